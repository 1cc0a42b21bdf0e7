"""staging_http against the real httpbin: base URL, headers, correlation ids, timeouts, retries."""

from __future__ import annotations

import base64
import json

import pytest

pytestmark = pytest.mark.usefixtures("staging_env")


def test_relative_urls_keep_the_target_path(pytester, httpbin_url):
    pytester.makepyfile(
        """
        def test_join(staging_http):
            assert staging_http.get("/items?x=1").json()["url"].endswith("/anything/api/items?x=1")
            assert staging_http.get("items").json()["url"].endswith("/anything/api/items")

        def test_absolute_url_is_left_alone(staging_http, staging_target):
            base = staging_target.url.split("/anything")[0]
            assert staging_http.get(base + "/get").json()["url"].endswith("/get")
        """
    )
    pytester.runpytest(f"--staging-target={httpbin_url}/anything/api").assert_outcomes(passed=2)


def test_target_headers_and_correlation_ids(pytester, httpbin_url):
    pytester.makefile(
        ".toml", **{"staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\nheaders = {{ X-Team = "payments" }}\n'}
    )
    pytester.makepyfile(
        """
        seen = []

        def echoed(staging_http):
            return staging_http.get("/headers").json()["headers"]

        def test_one(staging_http):
            first, second = echoed(staging_http), echoed(staging_http)
            assert first["X-Team"] == "payments"
            assert first["X-Correlation-Id"] == second["X-Correlation-Id"]
            seen.append(first["X-Correlation-Id"])

        def test_two(staging_http):
            cid = echoed(staging_http)["X-Correlation-Id"]
            assert cid not in seen and len(cid) == 32
            seen.append(cid)
            print("CID", cid)

        def test_explicit_header_wins(staging_http):
            assert staging_http.get("/headers", headers={"X-Correlation-ID": "mine"}).json()["headers"]["X-Correlation-Id"] == "mine"
        """
    )
    result = pytester.runpytest("-s", "--staging-target=qa", "--junitxml=junit.xml")
    result.assert_outcomes(passed=3)
    cid = next(line.split("CID ")[1].strip() for line in result.stdout.lines if "CID " in line)[:32]
    junit = (pytester.path / "junit.xml").read_text()
    assert f'<property name="correlation_id" value="{cid}" />' in junit
    assert junit.count('<property name="tier" value="smoke" />') == 3


def test_a_fixtures_requests_during_setup_belong_to_its_test(pytester, httpbin_url, keys):
    # The test under way is known from its start, before its fixtures are set up.
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def order(staging_http):
            return staging_http.get("/headers").json()["headers"]["X-Correlation-Id"]

        def test_one(order, staging_http):
            assert staging_http.get("/headers").json()["headers"]["X-Correlation-Id"] == order

        def test_two(order, staging_http):
            assert staging_http.get("/headers").json()["headers"]["X-Correlation-Id"] == order
        """
    )
    pytester.runpytest(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}").assert_outcomes(passed=2)
    envelope = json.loads((pytester.path / "staging-verdict.intoto.json").read_text())
    tests = json.loads(base64.b64decode(envelope["payload"]))["predicate"]["tests"]
    assert len({test["correlationId"] for test in tests}) == 2


def test_the_targets_credentials_and_headers_go_to_the_target_only(pytester, httpbin_url, staging_env):
    """A test that calls another host (a CDN, a third-party API) must not hand it the target's
    credentials. ``localhost`` is the same server under another origin, so it echoes what it got."""
    port = httpbin_url.rsplit(":", 1)[1]
    staging_env.setenv("STAGING_TARGET", f"http://deploy:s3cret-pw@127.0.0.1:{port}")
    pytester.makefile(
        ".toml",
        **{"staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\nheaders = {{ X-Api-Key = "k3y-k3y-k3y" }}\n'},
    )
    pytester.makepyfile(
        f"""
        def test_target_gets_them(staging_http):
            assert staging_http.get("/basic-auth/deploy/s3cret-pw").status_code == 200

        def test_other_host_does_not(staging_http):
            echoed = staging_http.get("http://localhost:{port}/headers").json()["headers"]
            assert "Authorization" not in echoed and "X-Correlation-Id" in echoed
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.makepyfile(
        f"""
        def test_named_target(staging_http):
            assert staging_http.get("/headers").json()["headers"]["X-Api-Key"] == "k3y-k3y-k3y"
            assert "X-Api-Key" not in staging_http.get("http://localhost:{port}/headers").json()["headers"]
        """
    )
    pytester.runpytest("--staging-target=qa").assert_outcomes(passed=1)


def test_target_timeout_applies_and_read_timeouts_are_not_retried(pytester, httpbin_url):
    pytester.makefile(".toml", **{"staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\ntimeout = 0.5\n'})
    pytester.makepyfile(
        """
        import pytest, requests

        def test_slow(staging_http):
            # ReadTimeout, not ConnectionError: a read that urllib3 retried (read=N) ends as
            # MaxRetryError, which requests raises as ConnectionError.
            with pytest.raises(requests.ReadTimeout):
                staging_http.get("/delay/3")

        def test_override(staging_http):
            assert staging_http.get("/delay/1", timeout=5).ok
        """
    )
    pytester.runpytest("--staging-target=qa").assert_outcomes(passed=2)


def test_connection_errors_are_retried(pytester, httpbin_url):
    pytester.makepyfile(
        """
        import logging, socket
        import pytest, requests

        def test_retries(staging_http, caplog):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            caplog.set_level(logging.WARNING, logger="urllib3")
            with pytest.raises(requests.ConnectionError):
                staging_http.get(f"http://127.0.0.1:{port}/")
            retries = [r for r in caplog.records if "Retrying" in r.getMessage()]
            assert len(retries) == 2
        """
    )
    pytester.runpytest(f"--staging-target={httpbin_url}").assert_outcomes(passed=1)


def test_latency_is_recorded_per_request_name(pytester, httpbin_url):
    pytester.makepyfile(
        """
        from pytest_staging.plugin import GATE_KEY

        def test_requests(staging_http):
            staging_http.get("/get?a=1")
            staging_http.get("/get")
            staging_http.post("/anything/x")

        def test_check(request):
            record = request.config.stash[GATE_KEY].records[request.node.nodeid.replace("test_check", "test_requests")]
            names = [m.name for m in record.metrics]
            assert names == ["GET /get", "GET /get", "POST /anything/x"]
            assert all(m.unit == "ms" and m.value > 0 for m in record.metrics)
        """
    )
    pytester.runpytest(f"--staging-target={httpbin_url}").assert_outcomes(passed=2)
