"""Acknowledgement links and codes in alert messages, and finding the alert they were made for."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import urlsplit

from hallwatch.alerts.acklink import AckLinks, Found
from hallwatch.alerts.messages import AckRef, sms_text, wecom_markdown
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.rules import Episode
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.base import signing
from hallwatch.daemon.config.alerts import AlertSettings, Robot, Role, WecomSettings
from hallwatch.daemon.config.roster import DutySettings
from hallwatch.daemon.config.table import read

from tests.alerts.test_alert_messages import NAMES, fired

KEY = b"0123456789abcdef" * 4
DUTY = DutySettings(public_url="https://hw.example.cn/", link_ttl_s=3600.0)


def episode(**kw: object) -> Episode:
    base: dict[str, object] = {
        "hall": "h1",
        "alert": "queue_peak",
        "subject": "",
        "phase": "firing",
        "since": 1000.0,
        "last_notified": 1000.0,
    }
    base.update(kw)
    return Episode(**base)  # type: ignore[arg-type]


def roles(hall: str) -> list[str]:
    return ["supervisor", "director"]


def test_sms_keeps_number_action_and_code_in_one_segment() -> None:
    """With a long summary the SMS still ends with the first action, the number and the 10-
    character code, within 70 characters."""
    t = fired()
    long = dataclasses.replace(t, summary=t.summary + "，" + "提取、贷款、转移、缴存" * 8)
    text = sms_text(long, NAMES, "ABCDE12345")
    number = t.alert_id.rsplit(":", 1)[-1][-4:]
    assert len(text) <= 70
    assert text.endswith(f"，建议增设2个窗口。编号{number}，确认码ABCDE12345")


def test_markdown_carries_a_link_per_role_or_the_code_without_a_public_url() -> None:
    """Each role reached gets its own link line; without a link the code and where to type it."""
    t = fired()
    acks = [
        AckRef("supervisor", "https://hw.example.cn/ack/TOKEN1"),
        AckRef("director", None, "ABCDE12345", "/ack"),
    ]
    text = wecom_markdown(t, NAMES, ("u1",), acks)
    assert "[大厅负责人点此确认（可填已开应急窗口数）](https://hw.example.cn/ack/TOKEN1)" in text
    assert "中心主任室确认：在值班确认页输入确认码 **ABCDE12345**" in text
    assert text.endswith("<@u1>")


def test_a_link_resolves_to_its_alert_and_role_until_it_expires() -> None:
    """The link of a message at 1000 s (ttl 3600) finds (episode, supervisor) up to 4600 s,
    "expired" after; another key's or a tampered link is "forged"."""
    links = AckLinks(DUTY, KEY)
    e = episode()
    url = links.link(e.alert_id, "supervisor", "h1", 1000.0)
    assert url is not None and url.startswith("https://hw.example.cn/ack/")
    token = urlsplit(url).path.rsplit("/", 1)[1]
    got = links.resolve(token, 4600.0, [episode(hall="h2"), e], roles)
    assert isinstance(got, Found) and (got.episode, got.role, got.expiry) == (
        e,
        "supervisor",
        4600.0,
    )
    assert links.resolve(token, 4601.0, [e], roles) == "expired"
    assert AckLinks(DUTY, b"x" * 64).resolve(token, 2000.0, [e], roles) == "forged"
    bad = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert links.resolve(bad, 2000.0, [e], roles) == "forged"
    assert links.resolve(token, 2000.0, [episode(since=999.0)], roles) == "forged"


def test_a_code_is_good_for_the_ttl_after_the_latest_message() -> None:
    """A code holds no expiry: it finds its alert while the latest message is under ttl old."""
    links = AckLinks(dataclasses.replace(DUTY, public_url=""), KEY)
    e = episode(last_notified=3000.0)
    code = links.code(e.alert_id, "director", "h1")
    assert links.link(e.alert_id, "director", "h1", 3000.0) is None
    got = links.resolve(code.lower(), 6600.0, [e], roles)
    assert isinstance(got, Found) and got.role == "director"
    assert links.resolve(code, 6601.0, [e], roles) == "expired"
    assert links.resolve("ZZZZZZZZZZ", 4000.0, [e], roles) == "forged"
    assert signing.normal_code(code) == code


async def test_the_service_routes_a_link_per_role_a_code_per_phone_and_mentions_who_is_on_duty(
    tmp_path: Path,
) -> None:
    """One robot for supervisor and director: its message carries both roles' links and @mentions
    the supervisor on duty at the alert's time (张伟, Thursday 11:30), not the one off duty; the
    supervisor's phone gets the SMS with the supervisor's code, one segment."""
    duty = read(
        {
            "public_url": "https://hw.example.cn",
            "roles": {
                "supervisor": {
                    "people": {
                        "zhang": {
                            "name": "张伟",
                            "wecom": "zhangwei",
                            "start": "08:00",
                            "end": "18:00",
                        },
                        "night": {
                            "name": "夜班",
                            "wecom": "yeban",
                            "start": "18:00",
                            "end": "08:00",
                        },
                    }
                }
            },
        },
        DutySettings,
        "duty",
        {},
    )
    settings = AlertSettings(
        roles={
            "supervisor": Role(wecom=("r",), sms=("13800000001",)),
            "director": Role(wecom=("r",)),
        },
        wecom=WecomSettings(robots={"r": Robot("https://wecom.invalid/send", "k")}),
    )
    t = dataclasses.replace(fired(), recipients=("supervisor", "director"))
    async with Outbox(tmp_path / "db") as outbox:
        alerts = Alerts(settings, outbox, clock=lambda: t.at, links=AckLinks(duty, KEY))
        notes = {n.channel: n for n in alerts.route(t)}
    content = notes["wecom"].payload["content"]
    links = re.findall(r"\((https://hw\.example\.cn/ack/[A-Za-z0-9_-]{30})\)", content)
    assert len(links) == 2 and "大厅负责人点此确认" in content and "中心主任室点此确认" in content
    assert content.endswith("<@zhangwei>")
    sms = notes["sms"].payload["text"]
    code = signing.code(KEY, t.alert_id, "supervisor", "h1")
    assert len(sms) <= 70 and sms.endswith(f"确认码{code}")
