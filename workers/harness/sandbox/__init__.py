"""`circulate sandbox`: the carrier and push gateway stand-in, in two modules.

    state.py  what the sandbox remembers and the rules it applies, kept apart from HTTP
    app.py    the HTTP app over that state, and the process that serves it

Tests build the app with `app.build_sandbox_app` and serve it in a thread.
"""
