"""The web front end: a Starlette app over the same services as the CLI (`queuectl dashboard`)."""
