"""WeCom (企业微信) group robots: `POST .../cgi-bin/webhook/send?key=KEY`.

The robot answers HTTP 200 even when it refuses; `errcode` 0 is success, 45009 means the
robot's 20-a-minute limit was hit (pause the robot, retry later). Markdown messages cannot
carry `mentioned_mobile_list`, so a mention by mobile travels as a separate short text message
(its own notification); mentions by userid go inline as `<@userid>` in the markdown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp
from hallwatch.alerts.channels import FAILED, RETRY, SENT, Reply, Result, request
from hallwatch.alerts.outbox import Notification
from hallwatch.daemon.config.alerts import Robot

THROTTLED = 45009
# Transient server-side codes: system busy (-1) and frequency limits.
_RETRY_CODES = {-1, 45009, 45033, 45047}


class WecomChannel:
    name = "wecom"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        robots: Mapping[str, Robot],
        *,
        clock: Callable[[], float],
        timeout_s: float = 10.0,
        throttle_pause_s: float = 60.0,
    ) -> None:
        self._session = session
        self._robots = robots
        self._clock = clock
        self._timeout = timeout_s
        self._pause = throttle_pause_s
        # robot -> until when it told us to wait (45009). Our own 20-a-minute limit is the
        # dispatcher's (alerts.channels.limited, `[alerts.rate_limits.wecom]`).
        self.paused_until: dict[str, float] = {}

    def ready_at(self, note: Notification, now: float) -> float:
        return max(now, self.paused_until.get(note.target, 0.0))

    @staticmethod
    def body(payload: Mapping[str, object]) -> dict[str, object]:
        """The robot's JSON body for a stored payload."""
        if payload.get("msgtype") == "text":
            text: dict[str, object] = {"content": payload["content"]}
            if payload.get("mentioned_mobile_list"):
                text["mentioned_mobile_list"] = payload["mentioned_mobile_list"]
            if payload.get("mentioned_list"):
                text["mentioned_list"] = payload["mentioned_list"]
            return {"msgtype": "text", "text": text}
        return {"msgtype": "markdown", "markdown": {"content": payload["content"]}}

    async def send(self, note: Notification) -> Result:
        robot = self._robots.get(note.target)
        if robot is None:
            return Result(FAILED, f"no robot {note.target!r} configured")
        reply = await request(
            self._session,
            "POST",
            robot.endpoint(),
            timeout_s=self._timeout,
            json=self.body(note.payload),
        )
        if isinstance(reply, Result):
            return reply
        return self._read(note.target, reply)

    def _read(self, robot: str, reply: Reply) -> Result:
        if reply.status != 200:
            detail = f"wecom HTTP {reply.status}"
            return Result(RETRY if reply.status >= 500 or reply.status == 429 else FAILED, detail)
        data = reply.json()
        if not isinstance(data, dict) or "errcode" not in data:
            return Result(RETRY, "wecom: answer without errcode")
        code = data.get("errcode")
        msg = str(data.get("errmsg", ""))[:200]
        if code == 0:
            return Result(SENT, "wecom ok")
        if code in _RETRY_CODES:
            if code == THROTTLED:
                until = self._clock() + self._pause
                self.paused_until[robot] = max(self.paused_until.get(robot, 0.0), until)
            return Result(RETRY, f"wecom errcode {code}: {msg}", self._pause, throttled=True)
        return Result(FAILED, f"wecom errcode {code}: {msg}")
