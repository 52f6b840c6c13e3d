"""The studio: a local web page on the engine, where AP size, stack size and sharpening are a click.

``luckystack studio RECORDING_OR_FOLDER`` (:mod:`command`) starts a Starlette app (:mod:`server`) on
uvicorn, bound to 127.0.0.1, guarded by a per-session token and a Host check (:mod:`security`). Each
change on the page is a pipeline edit that a :class:`session.Session` runs through ``api.run`` in a
background thread, on the command line's cache; the pictures are drawn from the cached results
(:mod:`previews`). The page itself is plain HTML, CSS and JS in ``static/``.
"""
