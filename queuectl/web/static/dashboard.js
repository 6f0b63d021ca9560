// queuectl dashboard: actions by fetch() with the CSRF token, live updates by server-sent events.
// No framework: the server renders HTML; on a change this swaps in the page's main block again.
"use strict";
(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const statusBox = () => document.getElementById("status");

  function say(text, ok) {
    const box = statusBox();
    if (!box) return;
    box.textContent = text;
    box.dataset.result = ok ? "ok" : "error";
    box.className = "status " + (ok ? "ok" : "error");
    box.hidden = false;
  }

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify(body === undefined ? {} : body),
      });
    } catch (err) {
      say("the dashboard did not answer: " + err.message, false);
      return;
    }
    let answer = null;
    const text = await response.text();
    try { answer = JSON.parse(text); } catch (err) { answer = null; }
    if (!response.ok) {
      const line = answer && answer.error ? answer.error : (text.split("\n")[0] || response.statusText);
      say(line + " (" + response.status + ")", false);
      return;
    }
    say(summary(url, answer), true);
    refresh();
  }

  function summary(url, answer) {
    if (answer && typeof answer === "object" && !Array.isArray(answer)) {
      const parts = [];
      for (const [key, value] of Object.entries(answer)) {
        if (Array.isArray(value)) {
          if (value.length) parts.push(key + ": " + value.join(", "));
        } else if (value && typeof value === "object") {
          const items = Object.entries(value).map(([k, v]) => k + " " + v);
          if (items.length) parts.push(key + ": " + items.join(", "));
        } else {
          parts.push(key + ": " + value);
        }
      }
      return parts.join("; ") || "done";
    }
    return "done: " + JSON.stringify(answer);
  }

  function picked() {
    return Array.from(document.querySelectorAll("input.pick:checked")).map((box) => box.value);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action], button[data-selection]");
    if (!button) return;
    let url = button.dataset.action;
    let body = button.dataset.body ? JSON.parse(button.dataset.body) : {};
    if (button.dataset.selection) {
      const ids = picked();
      if (!ids.length) { say("select runs first", false); return; }
      url = button.dataset.selection;
      body = { ids: ids };
    }
    const question = button.dataset.confirm || "Are you sure?";
    if (!window.confirm(question)) return;
    post(url, body);
  });

  document.addEventListener("change", (event) => {
    if (event.target.id !== "pick-all") return;
    document.querySelectorAll("input.pick").forEach((box) => { box.checked = event.target.checked; });
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset.post) return;
    event.preventDefault();
    const body = {};
    for (const [key, value] of new FormData(form).entries()) {
      if (value === "") continue;
      body[key] = key === "priority" ? Number(value) : value;
    }
    if (!window.confirm("Enqueue: " + (body.command || "") + " ?")) return;
    post(form.dataset.post, body).then(() => { if (statusBox().dataset.result === "ok") form.reset(); });
  });

  // -- live: swap the main block in when the store changes ------------------------------------
  let fetching = false;
  let again = false;

  async function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    const started = Date.now();
    try {
      const url = new URL(window.location.href);
      url.searchParams.set("fragment", "1");
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.ok || response.status === 404) swap(await response.text());
    } catch (err) {
      // the next change tries again
    } finally {
      lastTook = Date.now() - started;
      fetching = false;
      if (again) { again = false; refresh(); }
    }
  }

  function swap(html) {
    const main = document.getElementById("main");
    if (!main) return;
    const keep = keptState(main);
    const oldOutput = document.getElementById("output");
    main.innerHTML = html;
    restoreState(main, keep);
    const newOutput = document.getElementById("output");
    if (oldOutput && newOutput && oldOutput.dataset.runId === newOutput.dataset.runId &&
        oldOutput.dataset.attempt === newOutput.dataset.attempt && oldOutput.dataset.following === "true") {
      newOutput.replaceWith(oldOutput);  // the live output keeps its text and its stream
    } else {
      if (oldOutput && oldOutput !== newOutput) stopFollowing(oldOutput);
      startOutput();
    }
  }

  function keptState(main) {
    const focused = document.activeElement && main.contains(document.activeElement) ? document.activeElement.id : null;
    const values = {};
    main.querySelectorAll("input[id], select[id]").forEach((el) => {
      values[el.id] = el.type === "checkbox" ? el.checked : el.value;
    });
    const picks = picked();
    const open = Array.from(main.querySelectorAll("details[id]")).filter((d) => d.open).map((d) => d.id);
    return { focused, values, picks, open };
  }

  function restoreState(main, keep) {
    for (const [id, value] of Object.entries(keep.values)) {
      const el = document.getElementById(id);
      if (!el) continue;
      if (el.type === "checkbox") el.checked = value; else el.value = value;
    }
    main.querySelectorAll("input.pick").forEach((box) => { if (keep.picks.includes(box.value)) box.checked = true; });
    keep.open.forEach((id) => { const d = document.getElementById(id); if (d) d.open = true; });
    if (keep.focused) { const el = document.getElementById(keep.focused); if (el) el.focus(); }
  }

  function listen() {
    if (!window.EventSource) return;
    const lamp = document.getElementById("live");
    const source = new EventSource("/events");
    source.addEventListener("open", () => { if (lamp) lamp.dataset.live = "on"; });
    source.addEventListener("error", () => { if (lamp) lamp.dataset.live = "off"; });
    source.addEventListener("change", () => refreshSoon());
    document.addEventListener("visibilitychange", () => { if (!document.hidden && missed) refreshSoon(); });
  }

  // A change refreshes at most once per REFRESH_GAP (a busy store changes every moment), or per
  // five times what the last refresh took (a page that is slow to make, such as the overview of
  // a million runs, then costs the server at most a fifth of its time), and a hidden tab not at
  // all until it is shown again.
  const REFRESH_GAP = 1000;
  let lastRefresh = 0;
  let lastTook = 0;
  let timer = null;
  let missed = false;

  function refreshSoon() {
    if (document.hidden) { missed = true; return; }
    missed = false;
    if (timer) return;
    timer = setTimeout(() => { timer = null; lastRefresh = Date.now(); refresh(); },
      Math.max(0, lastRefresh + Math.max(REFRESH_GAP, 5 * lastTook) - Date.now()));
  }

  // -- a run's output, followed live --------------------------------------------------------
  const streams = new WeakMap();

  function stopFollowing(pre) {
    const source = streams.get(pre);
    if (source) source.close();
    streams.delete(pre);
    pre.dataset.following = "false";
  }

  function follow(pre, attempt, offset) {
    const url = new URL(pre.dataset.stream, window.location.href);
    url.searchParams.set("attempt", attempt);
    url.searchParams.set("offset", offset);
    const source = new EventSource(url);
    streams.set(pre, source);
    pre.dataset.following = "true";
    pre.dataset.attempt = attempt;
    source.addEventListener("output", (event) => {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(JSON.parse(event.data));
      pre.dataset.offset = event.lastEventId || pre.dataset.offset;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("note", (event) => {
      pre.append("\n[" + JSON.parse(event.data) + "]\n");
    });
    source.addEventListener("error", (event) => {
      if (event.data) { say(JSON.parse(event.data), false); stopFollowing(pre); }
    });
    source.addEventListener("end", (event) => {
      const end = JSON.parse(event.data);
      stopFollowing(pre);
      pre.dataset.ended = end.state;
      if (!end.final) {  // the run is to be tried again: follow its next attempt
        pre.append("\n[attempt " + end.attempt + " ended: " + end.state + "; waiting for attempt " + (end.attempt + 1) + "]\n");
        follow(pre, end.attempt + 1, 0);
      }
      refresh();
    });
  }

  function startOutput() {
    const pre = document.getElementById("output");
    if (!pre || pre.dataset.follow !== "true" || pre.dataset.following === "true") return;
    follow(pre, Number(pre.dataset.attempt), Number(pre.dataset.offset || 0));
  }

  document.addEventListener("DOMContentLoaded", () => {
    listen();
    startOutput();
  });
})();
