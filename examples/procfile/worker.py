"""A background worker: takes a job off its queue every two seconds (here: a counter)."""
import time

job = 0
while True:
    job += 1
    print(f"worker: done job {job}", flush=True)
    time.sleep(2)
