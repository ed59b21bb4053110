"""A trivial Locust user for measuring the load generator's own ceiling (bench only)."""

from locust import FastHttpUser, constant, task


class Ping(FastHttpUser):
    wait_time = constant(0)

    @task
    def ping(self) -> None:
        self.client.get("/ping")
