import time

print("started", flush=True)
for second in range(600):
    print(f"[metric] tick={second}", flush=True)
    time.sleep(1)
