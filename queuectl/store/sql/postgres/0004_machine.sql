-- Which machine (boot and pid namespace) a pool runs on: host names may repeat across machines.
ALTER TABLE workers ADD COLUMN machine text;
