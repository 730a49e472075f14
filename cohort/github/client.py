"""A small GitHub REST client on the standard library: JSON in and out, pagination, rate limits.

- Primary rate limit: when `x-ratelimit-remaining` reaches 0, the next request waits until
  `x-ratelimit-reset`; a 403/429 saying so is retried after that time.
- Secondary rate limits: a 403/429 with `Retry-After` is retried after that many seconds; without
  it, after `backoff_s`, doubling each time (GitHub asks for at least a minute).
- Server errors (5xx) and dropped connections are retried after 1, 2, 4, ... seconds.
- Writes (anything but GET) are paced `write_interval` seconds apart, GitHub's known-good pace
  for tools that create many repositories.

Every wait is announced through `progress`. Failures are `GitHubError`, one line naming the
request and GitHub's message.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlencode

from cohort.errors import GitHubError

API_URL = "https://api.github.com"
ACCEPT_JSON = "application/vnd.github+json"
API_VERSION = "2022-11-28"
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')
LAST_PAGE = re.compile(r'<[^>]*[?&]page=(\d+)[^>]*>;\s*rel="last"')


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def message(self) -> str:
        """GitHub's error message (with its first detail), or the start of the body."""
        try:
            data = self.json()
        except ValueError:
            return self.body[:200].decode(errors="replace").strip()
        if not isinstance(data, dict):
            return ""
        details = [
            e.get("message") or e.get("code", "")
            for e in data.get("errors") or []
            if isinstance(e, dict)
        ]
        return "; ".join(filter(None, [data.get("message", ""), *details[:1]]))


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Client:
    """`request` and friends against `api_url` (default https://api.github.com) with `token`."""

    sleep: Callable[[float], None] = staticmethod(time.sleep)  # tests replace these two
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(
        self,
        token: str,
        api_url: str = API_URL,
        write_interval: float = 1.0,
        retries: int = 6,
        backoff_s: float = 60.0,
        progress: Callable[[str], None] = _stderr,
        timeout: float = 60.0,
    ):
        self.token, self.api_url = token, api_url.rstrip("/")
        self.write_interval, self.retries, self.backoff_s = write_interval, retries, backoff_s
        self.progress, self.timeout = progress, timeout
        self._last_write = float("-inf")
        self._exhausted_until = 0.0  # the primary limit's reset time once it reached 0

    def _send(self, method: str, url: str, data: bytes | None, accept: str) -> Response:
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", accept)
        req.add_header("X-GitHub-Api-Version", API_VERSION)
        req.add_header("User-Agent", "cohort")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        # not forwarded on redirects: artifact and tarball downloads go to storage hosts
        req.add_unredirected_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as e:
            with e:
                return Response(e.code, e.headers, e.read())

    def _wait(self, seconds: float, why: str) -> None:
        if seconds > 0:
            self.progress(f"github: {why}; waiting {seconds:.0f} s")
            self.sleep(seconds)

    def _retry_after(self, resp: Response, attempt: int) -> tuple[float, str] | None:
        """How long to wait before retrying `resp`, and why; None when it is final."""
        if resp.status in (403, 429):
            if resp.headers.get("Retry-After", "").strip().isdigit():
                return float(resp.headers["Retry-After"]), "secondary rate limit (Retry-After)"
            if resp.headers.get("x-ratelimit-remaining") == "0":
                reset = float(resp.headers.get("x-ratelimit-reset") or 0)
                return max(reset - self.clock(), 0) + 1, "primary rate limit exhausted"
            if resp.status == 429 or "secondary rate limit" in resp.message().lower():
                return self.backoff_s * 2**attempt, "secondary rate limit"
            return None
        if resp.status >= 500:
            return float(2**attempt), f"server error {resp.status}"
        return None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict | None = None,
        accept: str = ACCEPT_JSON,
        ok: tuple[int, ...] = (),
    ) -> Response:
        """Send one request (retrying as the module says); a status >= 400 not in `ok` raises."""
        url = path if path.startswith(self.api_url + "/") else self.api_url + path
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        what = f"GitHub {method} {url.removeprefix(self.api_url)}"
        for attempt in range(self.retries + 1):
            self._wait(self._exhausted_until - self.clock(), "primary rate limit exhausted")
            if method != "GET":
                pause = self._last_write + self.write_interval - time.monotonic()
                if pause > 0:
                    self.sleep(pause)
                self._last_write = time.monotonic()
            try:
                resp = self._send(method, url, data, accept)
            except OSError as e:  # refused, reset, timed out, DNS: worth another try
                reason = getattr(e, "reason", e)
                status, why = None, f"cannot reach {self.api_url} ({reason})"
                retry: tuple[float, str] | None = (float(2**attempt), f"no answer ({reason})")
            else:
                if resp.headers.get("x-ratelimit-remaining") == "0" and resp.status < 400:
                    self._exhausted_until = float(resp.headers.get("x-ratelimit-reset") or 0)
                if resp.status < 400 or resp.status in ok:
                    return resp
                status, why = resp.status, f"{resp.status} {resp.message()}"
                retry = self._retry_after(resp, attempt)
            if retry is None:
                raise GitHubError(f"{what}: {why}", status)
            if attempt == self.retries:
                raise GitHubError(f"{what}: {why} (gave up after {self.retries} retries)", status)
            self._wait(*retry)
        raise AssertionError("unreachable")

    def get(self, path: str, /, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    def paginate(self, path: str, key: str | None = None, /, **params: Any) -> Iterator[Any]:
        """Every item of a list endpoint, following `Link: rel="next"` (100 per page)."""
        url: str | None = path
        query: dict | None = {"per_page": 100, **params}
        while url:
            resp = self.request("GET", url, params=query)
            data = resp.json()
            yield from data[key] if key else data
            found = NEXT_LINK.search(resp.headers.get("Link", ""))
            url = found.group(1) if found and found.group(1).startswith(self.api_url) else None
            query = None


def last_page(resp: Response) -> int:
    """The page number of `Link: rel="last"` (1 when there is one page)."""
    found = LAST_PAGE.search(resp.headers.get("Link", ""))
    return int(found.group(1)) if found else 1
