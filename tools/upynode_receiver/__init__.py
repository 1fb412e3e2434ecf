"""Host-side reference receiver for upynode sensor nodes (Flask + SQLite, served by waitress).

Run it:  upynode-receiver --port 8080        (options: upynode-receiver --help)
         upynode-receiver --mqtt 127.0.0.1:1883 --base-topic home   (also stores what nodes publish)
Charts:  python -m upynode_receiver.chartjs  (fetches the pinned Chart.js into build/)

  receiver.py   the Flask app: its URLs, each a small handler, and create_app wiring them
  validate.py   what a request may carry; a bad value is a 400 that names it
  store.py      SQLite storage of readings
  mqtt.py       the MQTT subscriber: nodes' state and backlog topics into the same store
  chartjs.py    fetching and verifying Chart.js for the page
  __main__.py   the upynode-receiver command (waitress)
"""
