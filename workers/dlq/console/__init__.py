"""The dead-letter web console, mounted under `/console` of the API (`app.build_console`).

`app` (pages and actions), `auth` (who may see and do what), `cookie` (the signed session
cookie), `sessions` (server-side sessions), `login_throttle`, `users` (console users, which the
CLI manages too), `masking` (what pages hide) and `overview` (queue depths), with `templates/`
and `static/` beside them.
"""
