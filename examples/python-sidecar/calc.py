"""A pm sidecar in plain Python (standard library only), speaking newline-delimited JSON-RPC.

It connects to the daemon at PM_DAEMON, proves who it is with PM_TOKEN, registers its methods,
then serves the requests the daemon routes to it over that same connection (reverse mode):

    pm call calc.add '[1, 2]'      ->  3
"""
import json
import os
import socket
import sys


def connect(endpoint):
    if endpoint.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(endpoint[len("unix://"):])
    elif endpoint.startswith("tcp://"):
        host, port = endpoint[len("tcp://"):].rstrip("/").rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
    else:
        sys.exit(f"calc.py speaks unix:// and tcp:// only, not {endpoint}")
    return sock


METHODS = {
    "add": lambda params: sum(params),
    "echo": lambda params: params,
    "upper": lambda params: params[0].upper(),
}


def main():
    sock = connect(os.environ["PM_DAEMON"])
    stream = sock.makefile("rwb", buffering=0)

    def send(message):
        stream.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    send({"jsonrpc": "2.0", "id": "auth", "method": "pm.auth", "params": {"token": os.environ["PM_TOKEN"]}})
    send({"jsonrpc": "2.0", "id": "register", "method": "pm.register", "params": {"methods": sorted(METHODS)}})
    for line in stream:
        message = json.loads(line)
        if "method" not in message:
            if "error" in message:  # an answer to our own auth or register
                sys.exit(f"pm refused {message['id']}: {message['error']['message']}")
            print(f"{message['id']}: ok", flush=True)
            continue
        handler = METHODS.get(message["method"])
        if "id" not in message:
            continue  # a notification: nothing to answer
        if handler is None:
            reply = {"error": {"code": -32601, "message": f"no method {message['method']}"}}
        else:
            try:
                reply = {"result": handler(message.get("params", []))}
            except Exception as e:  # noqa: BLE001 - any failure becomes a JSON-RPC error
                reply = {"error": {"code": -32000, "message": str(e)}}
        send({"jsonrpc": "2.0", "id": message["id"], **reply})


if __name__ == "__main__":
    main()
