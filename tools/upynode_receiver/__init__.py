"""Host-side reference receiver for upynode sensor nodes (Flask + SQLite, served by waitress).

Run it:  upynode-receiver --port 8080   (see __main__.py for the options)
"""
