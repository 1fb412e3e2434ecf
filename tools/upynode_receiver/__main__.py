"""upynode-receiver: run the receiver with waitress (a production WSGI server).

Every option falls back to an environment variable, so `make server` needs no arguments:
  --db UPYNODE_DB          --keys-file UPYNODE_KEYS_FILE   (and/or UPYNODE_API_KEYS=k1,k2)
  --key KEY=node-a,node-b  (repeated: a key that writes only those nodes' readings)
  --port UPYNODE_PORT      --fields UPYNODE_FIELDS ("1=temperature,2=humidity,3=light")
  --rate-limit UPYNODE_RATE_LIMIT (requests a minute per API key, 0 = none)
  --mqtt UPYNODE_MQTT      --base-topic UPYNODE_BASE_TOPIC
  --mqtt-user UPYNODE_MQTT_USER   (its password only from UPYNODE_MQTT_PASSWORD: not on a command line)

With --mqtt HOST:PORT it also subscribes to the nodes' <base-topic>/+/state and
<base-topic>/+/backlog topics and stores their readings (QoS 1, reconnecting).
"""
import argparse
import logging
import os
import sys

import waitress

from . import chartjs, receiver
from .mqtt import MqttIngest, parse_host_port


def main(argv=None):
    env = os.environ
    parser = argparse.ArgumentParser(prog="upynode-receiver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; use the LAN address for real nodes)")
    parser.add_argument("--port", type=int, default=int(env.get("UPYNODE_PORT", 8080)))
    parser.add_argument("--db", default=env.get("UPYNODE_DB") or str(receiver.DEFAULT_DB),
                        help="SQLite file (default build/receiver.sqlite3)")
    # No default here: load_api_keys falls back to UPYNODE_KEYS_FILE itself.
    parser.add_argument("--keys-file",
                        help='JSON file: ["key", ...] or {"api_keys": [...]} (default $UPYNODE_KEYS_FILE)')
    parser.add_argument("--key", action="append", default=[], metavar="KEY=NODE,...",
                        help="an API key bound to the node names it may write (repeat for more keys;"
                             " a key without names may write any node's readings)")
    parser.add_argument("--fields", default=env.get("UPYNODE_FIELDS") or receiver.DEFAULT_FIELDS,
                        help="tutorial field number to quantity name (default %(default)s)")
    parser.add_argument("--rate-limit", type=int, metavar="N",
                        default=int(env.get("UPYNODE_RATE_LIMIT", receiver.DEFAULT_RATE_LIMIT)),
                        help="requests a minute per API key before 429 Too Many Requests"
                             " (default %(default)s; 0 = no limit)")
    parser.add_argument("--mqtt", metavar="HOST:PORT", default=env.get("UPYNODE_MQTT"),
                        help="also store what nodes publish on this MQTT broker")
    parser.add_argument("--base-topic", default=env.get("UPYNODE_BASE_TOPIC", "home"),
                        help="the nodes' mqtt.base_topic (default %(default)s)")
    parser.add_argument("--discovery-prefix", default="homeassistant",
                        help="where the nodes' HA discovery configs (their units) are (default %(default)s)")
    parser.add_argument("--mqtt-client-id",
                        help="the receiver's MQTT client id, whose session the broker keeps while it is"
                             " away (default upynode-receiver-<base-topic>; one per receiver)")
    parser.add_argument("--mqtt-user", default=env.get("UPYNODE_MQTT_USER"),
                        help="MQTT user name; the password comes from UPYNODE_MQTT_PASSWORD")
    args = parser.parse_args(argv)

    try:
        api_keys = receiver.load_api_keys(args.keys_file, env, args.key)
        fields = receiver.parse_field_map(args.fields)
        mqtt_at = parse_host_port(args.mqtt) if args.mqtt else None
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if args.rate_limit < 0:
        parser.error("--rate-limit must be 0 (no limit) or more")
    if not api_keys and not mqtt_at:
        parser.error("no API keys: set UPYNODE_API_KEYS=key1,key2 or pass --keys-file keys.json")
    if not chartjs.is_installed():
        print("warning: Chart.js is not fetched, the page will show no charts;"
              f" run: {chartjs.FETCH_COMMAND}", file=sys.stderr)

    if receiver.unbound_keys(api_keys):
        print(f"warning: {receiver.unbound_keys(api_keys)} API key(s) not bound to node names: each can write"
              " any node's readings; bind them with --key KEY=node-a,node-b or a keys file"
              ' ({"api_keys": {"KEY": ["node-a"]}})', file=sys.stderr)
    app = receiver.create_app(args.db, api_keys, fields, rate_limit=args.rate_limit)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"upynode receiver: http://{args.host}:{args.port}/  db={args.db}  {len(api_keys)} API key(s)",
          flush=True)
    if mqtt_at:
        # paho's own thread: it connects, retries and stores while waitress serves HTTP.
        MqttIngest(args.db, *mqtt_at, base_topic=args.base_topic,
                   discovery_prefix=args.discovery_prefix, client_id=args.mqtt_client_id,
                   username=args.mqtt_user,
                   password=env.get("UPYNODE_MQTT_PASSWORD")).start()
    # waitress refuses bigger bodies itself, before Flask sees them. A connection costs it a
    # socket, not a thread, until its request is whole: slow clients (a header line a
    # second, 200 of them) hold only sockets, up to CONNECTION_LIMIT, and a silent one goes
    # after CHANNEL_TIMEOUT_S; a node's POST still gets in.
    waitress.serve(app, host=args.host, port=args.port, ident="upynode-receiver",
                   max_request_body_size=receiver.MAX_BODY_BYTES,
                   connection_limit=receiver.CONNECTION_LIMIT, channel_timeout=receiver.CHANNEL_TIMEOUT_S)


if __name__ == "__main__":
    main()
