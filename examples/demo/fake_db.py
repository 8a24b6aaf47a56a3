"""A stand-in database: takes a moment to boot, then says it is ready, and exits cleanly on SIGTERM."""
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: (print("shutting down", flush=True), sys.exit(0)))
print("booting", flush=True)
time.sleep(0.3)
print("ready to accept connections", flush=True)
while True:
    time.sleep(3600)
