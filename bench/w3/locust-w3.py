"""W3 for Locust (FastHttpUser): POST a small JSON body, parse the ~2 KB JSON answer,
check two fields; a wrong answer is a failure (catch_response). Prints
`BENCH requests=N failures=N` when Locust quits, for the rig."""
import os

from locust import FastHttpUser, constant, events, task

PATH = os.environ.get("W3_PATH", "/w3")


class W3Fast(FastHttpUser):
    wait_time = constant(0)

    @task
    def post_and_check(self):
        with self.client.post(PATH, json={"name": "x", "qty": 1}, catch_response=True) as r:
            try:
                j = r.json()
                if j["name"] == "x" and len(j["items"]) == 20:
                    r.success()
                else:
                    r.failure("wrong body")
            except Exception as e:  # noqa: BLE001 - any parse problem is a failure
                r.failure(f"bad json: {e!r}")


@events.quitting.add_listener
def _bench_line(environment, **_kw):
    total = environment.stats.total
    print(f"BENCH requests={total.num_requests} failures={total.num_failures}", flush=True)
