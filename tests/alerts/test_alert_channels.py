"""Each channel against a local server speaking the provider's wire format, failures included."""

from __future__ import annotations

import shutil
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from hallwatch.alerts.channels import FAILED, RETRY, SENT
from hallwatch.alerts.channels.alertmanager import AlertmanagerChannel, postable
from hallwatch.alerts.channels.sms import (
    AliyunSms,
    GenericSms,
    SmsChannel,
    TencentSms,
    aliyun_signature,
    tc3_authorization,
)
from hallwatch.alerts.channels.webhook import WebhookChannel
from hallwatch.alerts.channels.wecom import WecomChannel
from hallwatch.alerts.outbox import Notification
from hallwatch.daemon.config.alerts import AlertmanagerSettings, Robot, SmsSettings, Webhook

from tests.harness.alert_fakes import FakeAliyun, FakeTencent, FakeWecom, Sink, serve


def note(channel: str, target: str, payload: dict[str, object], key: str = "k1") -> Notification:
    return Notification(1, key, channel, target, payload, 0.0, 0.0, 0, "pending", "")


MD = {"msgtype": "markdown", "content": "## 【排队高峰告警】"}


# --- signatures against the providers' published examples ------------------------------------


def test_aliyun_signature_matches_the_documented_sendsms_example() -> None:
    """Aliyun's SMS signature example (testId/testSecret, 2017-07-12) gives zJDF+Lrzhj/..."""
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun_signature(params, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_tc3_signature_matches_the_documented_cvm_example() -> None:
    """Tencent's API 3.0 signature example (DescribeInstances, 1551113065) gives 2230eefd..."""
    auth = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
        "Gu5t9xGARNpq86cd98joQYCN3*******",
        service="cvm",
        host="cvm.tencentcloudapi.com",
        payload='{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], '
        '"Name": "instance-name"}]}',
        timestamp=1551113065,
    )
    assert auth.endswith(
        "/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


# --- WeCom ------------------------------------------------------------------------------------


async def test_wecom_markdown_accepted_and_errcodes_read() -> None:
    """errcode 0 is sent; 45009 is a throttled retry that pauses the robot; 93000 is permanent;
    HTTP 500 and a slow answer (timeout) are retries; mentions travel in a text message."""
    fake = FakeWecom(script=deque([0, 45009, 93000, 500, "slow"]))
    async with serve(fake.app()) as base, aiohttp.ClientSession() as session:
        robots = {"r": Robot(f"{base}/cgi-bin/webhook/send", "robot-a")}
        ch = WecomChannel(session, robots, clock=time.time, timeout_s=0.5, throttle_pause_s=30)
        assert (await ch.send(note("wecom", "r", MD))).outcome == SENT
        throttled = await ch.send(note("wecom", "r", MD))
        assert (throttled.outcome, throttled.throttled) == (RETRY, True)
        assert ch.ready_at(note("wecom", "r", MD), time.time()) > time.time() + 25
        ch.paused_until["r"] = 0  # as if the pause ended
        assert (await ch.send(note("wecom", "r", MD))).outcome == FAILED
        assert (await ch.send(note("wecom", "r", MD))).outcome == RETRY
        slow = await ch.send(note("wecom", "r", MD))
        assert slow.outcome == RETRY and "timeout" in slow.detail
        at = {"msgtype": "text", "content": "请及时处理", "mentioned_mobile_list": ["13800000001"]}
        assert (await ch.send(note("wecom", "r", at))).outcome == SENT
    assert fake.hits[0].body == {"msgtype": "markdown", "markdown": {"content": MD["content"]}}
    assert fake.hits[-1].body["text"]["mentioned_mobile_list"] == ["13800000001"]
    assert all(h.key == "robot-a" for h in fake.hits)


async def test_wecom_failure_detail_never_contains_the_key() -> None:
    """A refused or unreachable robot is reported without its key."""
    async with aiohttp.ClientSession() as session:
        robots = {"r": Robot("http://127.0.0.1:9/cgi-bin/webhook/send", "robot-SECRET")}
        res = await WecomChannel(session, robots, clock=time.time).send(note("wecom", "r", MD))
    assert res.outcome == RETRY and "SECRET" not in res.detail


# --- SMS --------------------------------------------------------------------------------------


async def test_aliyun_sendsms_signed_request_and_codes() -> None:
    """The fake verifies the HMAC-SHA1 signature; OK is sent, BUSINESS_LIMIT_CONTROL retries,
    an illegal number is permanent, a 503 retries, a wrong secret is permanent."""
    fake = FakeAliyun(
        "the-secret", script=deque(["isv.BUSINESS_LIMIT_CONTROL", "isv.MOBILE_NUMBER_ILLEGAL", 503])
    )
    async with serve(fake.app()) as base, aiohttp.ClientSession() as session:
        s = SmsSettings(
            provider="aliyun",
            endpoint=base + "/",
            access_key_id="LTAI-id",
            access_key_secret="the-secret",
            region="cn-hangzhou",
            sign_name="公积金中心",
            template_code="SMS_1",
        )
        ch = SmsChannel(AliyunSms(session, s, clock=time.time))
        payload = {
            "text": "x",
            "params": {"hall": "市中心", "event": "排队高峰告警", "detail": "26人"},
        }
        outcomes = [(await ch.send(note("sms", "13800000001", payload))).outcome for _ in range(4)]
        bad = SmsChannel(AliyunSms(session, replace(s, access_key_secret="wrong"), clock=time.time))
        wrong = await bad.send(note("sms", "13800000001", payload))
    assert outcomes == [RETRY, FAILED, RETRY, SENT]
    assert wrong.outcome == FAILED and "SignatureDoesNotMatch" in wrong.detail
    form = fake.received[-2]
    assert form["Action"] == "SendSms" and form["PhoneNumbers"] == "13800000001"
    assert form["SignName"] == "公积金中心" and '"event": "排队高峰告警"' in form["TemplateParam"]
    assert form["SignatureMethod"] == "HMAC-SHA1" and form["Version"] == "2017-05-25"


async def test_tencent_sendsms_tc3_signed_request_and_codes() -> None:
    """The fake verifies TC3-HMAC-SHA256; Ok is sent, LimitExceeded retries, a request limit
    error retries, an auth failure is permanent."""
    fake = FakeTencent(
        "AKID-x",
        "key-y",
        script=deque(
            [
                "LimitExceeded.PhoneNumberThirtySecondLimit",
                "Error:RequestLimitExceeded",
                "Error:UnauthorizedOperation.SmsSdkAppIdVerifyFail",
            ]
        ),
    )
    async with serve(fake.app()) as base, aiohttp.ClientSession() as session:
        s = SmsSettings(
            provider="tencent",
            endpoint=base + "/",
            secret_id="AKID-x",
            secret_key="key-y",
            region="ap-guangzhou",
            sdk_app_id="1400000000",
            sign_name="公积金中心",
            template_id="1234",
        )
        ch = SmsChannel(TencentSms(session, s, clock=time.time))
        payload = {
            "text": "x",
            "params": {"hall": "市中心", "event": "排队高峰告警", "detail": "26人"},
        }
        outcomes = [(await ch.send(note("sms", "13800000001", payload))).outcome for _ in range(4)]
    assert outcomes == [RETRY, RETRY, FAILED, SENT]
    headers, body = fake.received[-1]
    assert headers["X-TC-Action"] == "SendSms" and headers["X-TC-Version"] == "2021-01-11"
    assert body["PhoneNumberSet"] == ["+8613800000001"]
    assert body["TemplateParamSet"] == ["市中心", "排队高峰告警", "26人"]
    assert body["SmsSdkAppId"] == "1400000000" and body["SessionContext"] == "k1"


async def test_generic_sms_gateway_and_webhook_statuses() -> None:
    """2xx sent; 429 and 503 retried (Retry-After honoured); 400 permanent; key in a header."""
    sink = Sink(script=deque([503, 429, 400]))
    async with serve(sink.app("/sms", "/hook")) as base, aiohttp.ClientSession() as session:
        sms = SmsChannel(
            GenericSms(
                session, SmsSettings(provider="generic", endpoint=base + "/sms", token="tok")
            )
        )
        hook = WebhookChannel(session, {"ops": Webhook(base + "/hook", token="tok2")})
        r1 = await sms.send(note("sms", "13800000001", {"text": "hi"}))
        r2 = await hook.send(note("webhook", "ops", {"a": 1}))
        r3 = await hook.send(note("webhook", "ops", {"a": 1}))
        r4 = await hook.send(note("webhook", "ops", {"a": 1}, key="k2"))
    assert [r.outcome for r in (r1, r2, r3, r4)] == [RETRY, RETRY, FAILED, SENT]
    assert r2.throttled
    key, body, headers = sink.received[0]
    assert key == "k1" and body == {"phone": "13800000001", "text": "hi", "key": "k1"}
    assert headers["Authorization"] == "Bearer tok"
    assert sink.received[-1][2]["Authorization"] == "Bearer tok2"


# --- Alertmanager -----------------------------------------------------------------------------


def _am_alert(ends: float) -> dict[str, object]:
    return postable(
        alert="queue_peak",
        hall="h1",
        subject="",
        level=1,
        alert_id="h1:queue_peak:1",
        summary="h1排队高峰告警",
        started_at=time.time() - 60,
        ends_at=ends,
    )


async def test_alertmanager_api_v2_post() -> None:
    """The alert list goes to /api/v2/alerts with labels, annotations, startsAt and endsAt."""
    sink = Sink(script=deque([500]))
    async with serve(sink.app("/api/v2/alerts")) as base, aiohttp.ClientSession() as session:
        ch = AlertmanagerChannel(session, AlertmanagerSettings(url=base))
        n = note("alertmanager", "", {"alerts": [_am_alert(time.time() + 240)]})
        assert (await ch.send(n)).outcome == RETRY
        assert (await ch.send(n)).outcome == SENT
    (alert,) = sink.received[-1][1]
    assert alert["labels"]["alertname"] == "HallQueuePeak" and alert["labels"]["hall"] == "h1"
    assert alert["startsAt"].endswith("Z") and alert["endsAt"].endswith("Z")


@pytest.mark.skipif(
    not shutil.which("prometheus-alertmanager"), reason="needs Debian's alertmanager"
)
async def test_real_alertmanager_accepts_and_resolves(tmp_path: Path) -> None:
    """A real Alertmanager takes the posted alert, lists it active, and marks it resolved."""
    import asyncio
    import socket

    with socket.socket() as s_:
        s_.bind(("127.0.0.1", 0))
        port = s_.getsockname()[1]
    cfg = tmp_path / "am.yml"
    cfg.write_text("route:\n  receiver: none\nreceivers:\n  - name: none\n")
    proc = await asyncio.create_subprocess_exec(
        "prometheus-alertmanager",
        f"--config.file={cfg}",
        f"--storage.path={tmp_path}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(base + "/-/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            ch = AlertmanagerChannel(session, AlertmanagerSettings(url=base))
            res = await ch.send(
                note("alertmanager", "", {"alerts": [_am_alert(time.time() + 240)]})
            )
            assert res.outcome == SENT, res.detail
            async with session.get(base + "/api/v2/alerts") as r:
                active = await r.json()
            assert active[0]["labels"]["alertname"] == "HallQueuePeak"
            assert active[0]["status"]["state"] == "active"
            res = await ch.send(note("alertmanager", "", {"alerts": [_am_alert(time.time() - 1)]}))
            assert res.outcome == SENT
            async with session.get(base + "/api/v2/alerts?active=true") as r:
                assert await r.json() == []
    finally:
        proc.kill()
        await proc.wait()
