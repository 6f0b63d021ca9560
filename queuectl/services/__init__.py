"""The verbs every front end calls (the CLI now; the shell and the web page next).

A service does the whole verb, wake-ups included, and returns values; it never
prints, never imports click, rich or an HTTP library. A front end parses input,
calls one service and renders what it returns.
"""
