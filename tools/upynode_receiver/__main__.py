"""upynode-receiver: run the receiver with waitress (a production WSGI server).

Every option falls back to an environment variable, so `make server` needs no arguments:
  --db UPYNODE_DB          --keys-file UPYNODE_KEYS_FILE   (and/or UPYNODE_API_KEYS=k1,k2)
  --port UPYNODE_PORT      --fields UPYNODE_FIELDS ("1=temperature,2=humidity,3=light")
"""
import argparse
import logging
import os
import sys

import waitress

from . import chartjs, receiver


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
    parser.add_argument("--fields", default=env.get("UPYNODE_FIELDS") or receiver.DEFAULT_FIELDS,
                        help="tutorial field number to quantity name (default %(default)s)")
    args = parser.parse_args(argv)

    try:
        api_keys = receiver.load_api_keys(args.keys_file, env)
        fields = receiver.parse_field_map(args.fields)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if not api_keys:
        parser.error("no API keys: set UPYNODE_API_KEYS=key1,key2 or pass --keys-file keys.json")
    if not chartjs.is_installed():
        print("warning: Chart.js is not fetched, the page will show no charts;"
              f" run: {chartjs.FETCH_COMMAND}", file=sys.stderr)

    app = receiver.create_app(args.db, api_keys, fields)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"upynode receiver: http://{args.host}:{args.port}/  db={args.db}  {len(api_keys)} API key(s)",
          flush=True)
    # waitress refuses bigger bodies itself, before Flask sees them.
    waitress.serve(app, host=args.host, port=args.port, ident="upynode-receiver",
                   max_request_body_size=receiver.MAX_BODY_BYTES)


if __name__ == "__main__":
    main()
