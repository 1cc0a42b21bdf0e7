"""Load scenario for the example gate: browsing-like traffic against httpbin.

10 users at 10 requests/s each: ~100 rps, well under what one gunicorn worker serves on a
2-core machine, so the thresholds measure the target rather than the load generator.
"""

from locust import HttpUser, constant_throughput, task


class Visitor(HttpUser):
    wait_time = constant_throughput(10)

    @task(5)
    def json_document(self):
        self.client.get("/json")

    @task(3)
    def query(self):
        self.client.get("/get?page=2", name="/get")

    @task(1)
    def post_form(self):
        self.client.post("/post", json={"sku": "A-1", "qty": 2})

    @task(1)
    def status(self):
        with self.client.get("/status/200", name="/status", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
