"""The smoke/status probe never raises: a URL it cannot use is a failed reply that says why."""

from __future__ import annotations

import pytest

from eurosat_service.adapters.http_probe import UrllibEndpointProbe


@pytest.mark.parametrize("url, reason", [
    ("notaurl/readyz", "not an http:// or https:// URL: 'notaurl/readyz'"),
    ("http://[::1/readyz", "not a usable URL 'http://[::1/readyz': Invalid IPv6 URL"),
    ("file:///etc/hostname", "not an http:// or https:// URL: 'file:///etc/hostname'"),  # no HTTP status
])
def test_an_unusable_url_is_a_failed_reply_with_the_reason(url, reason):
    probe = UrllibEndpointProbe()
    for reply in (probe.get(url, timeout=1),
                  probe.post_file(url, "file", "smoke.jpg", b"\xff\xd8\xff", "image/jpeg", timeout=1)):
        assert (reply.status, reply.body, reply.error) == (0, b"", reason)


def test_smoke_with_a_malformed_url_is_a_usage_error_not_a_traceback(capsys):
    from eurosat_service.entrypoints import cli, deploy

    for url, reason in (("notaurl", "'notaurl' is not an http:// or https:// URL with a host"),
                        ("http://[::1", "'http://[::1' is not a usable URL: Invalid IPv6 URL"),
                        ("http://host:99999", "'http://host:99999' is not a usable URL: Port out of range 0-65535")):
        with pytest.raises(SystemExit) as exited:
            cli.run(lambda: deploy.main(["smoke", "--url", url]))  # noqa: B023 (called at once)
        out, err = capsys.readouterr()
        assert exited.value.code == 2 and out == "" and "Traceback" not in err
        assert err.rstrip().endswith(f"argument --url: {reason}"), err
