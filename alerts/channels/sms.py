"""SMS through a provider: a generic HTTP gateway, Aliyun `SendSms`, Tencent Cloud `SendSms`.

One notification is one phone number, so a partial failure never resends to the others.
Aliyun: RPC style, form-encoded POST, HMAC-SHA1 signature version 1.0 (API version 2017-05-25).
Tencent: API 3.0, JSON POST, TC3-HMAC-SHA256 (API version 2021-01-11).
Both send approved templates only: the stored payload carries the template variables.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import aiohttp
from hallwatch.alerts.channels import FAILED, RETRY, SENT, Reply, Result, by_status, request
from hallwatch.alerts.outbox import Notification
from hallwatch.daemon.config.alerts import SmsSettings


class SmsProvider(Protocol):
    async def send(self, phone: str, payload: Mapping[str, Any], key: str) -> Result: ...


# --- Aliyun -----------------------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """Aliyun's RPC encoding: RFC 3986 unreserved characters kept, space as %20, `~` kept."""
    return quote(value, safe="-_.~")


def aliyun_string_to_sign(params: Mapping[str, str], method: str = "POST") -> str:
    query = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    return f"{method}&{percent_encode('/')}&{percent_encode(query)}"


def aliyun_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign))."""
    digest = hmac.new(
        (secret + "&").encode(), aliyun_string_to_sign(params, method).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


class AliyunSms:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        s: SmsSettings,
        *,
        clock: Callable[[], float],
        nonce: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._session, self._s, self._clock, self._nonce = session, s, clock, nonce

    def params(self, phone: str, payload: Mapping[str, Any], key: str) -> dict[str, str]:
        p = {
            "AccessKeyId": self._s.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self._s.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
            "PhoneNumbers": phone,
            "SignName": self._s.sign_name,
            "TemplateCode": self._s.template_code,
            "TemplateParam": json.dumps(payload.get("params", {}), ensure_ascii=False),
            "OutId": hashlib.sha1(key.encode()).hexdigest()[:32],
        }
        p["Signature"] = aliyun_signature(p, self._s.access_key_secret, "POST")
        return p

    async def send(self, phone: str, payload: Mapping[str, Any], key: str) -> Result:
        reply = await request(
            self._session,
            "POST",
            self._s.endpoint,
            timeout_s=self._s.timeout_s,
            data=self.params(phone, payload, key),
        )
        if isinstance(reply, Result):
            return reply
        data = reply.json()
        code = str(data.get("Code", "")) if isinstance(data, dict) else ""
        if reply.status == 200 and code == "OK":
            return Result(SENT, f"aliyun OK {data.get('BizId', '')}")
        msg = str(data.get("Message", ""))[:200] if isinstance(data, dict) else ""
        detail = f"aliyun HTTP {reply.status} {code}: {msg}"
        throttled = "LIMIT" in code.upper() or code.startswith("Throttling")
        if throttled or reply.status >= 500 or code in ("", "ServiceUnavailable", "InternalError"):
            return Result(RETRY, detail, throttled=throttled)
        return Result(FAILED, detail)


# --- Tencent ----------------------------------------------------------------------------------

TC3_CONTENT_TYPE = "application/json; charset=utf-8"


def tc3_signature(
    secret_key: str,
    *,
    service: str,
    host: str,
    payload: str,
    timestamp: int,
    content_type: str = TC3_CONTENT_TYPE,
) -> tuple[str, str]:
    """(date, hex signature) of a TC3-HMAC-SHA256 POST with headers content-type and host."""
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload.encode()).hexdigest(),
        ]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    k = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return date, hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    secret_id: str, secret_key: str, *, service: str, host: str, payload: str, timestamp: int
) -> str:
    date, sig = tc3_signature(
        secret_key, service=service, host=host, payload=payload, timestamp=timestamp
    )
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={sig}"
    )


class TencentSms:
    def __init__(
        self, session: aiohttp.ClientSession, s: SmsSettings, *, clock: Callable[[], float]
    ) -> None:
        self._session, self._s, self._clock = session, s, clock
        parts = urlsplit(s.endpoint)
        self._host = parts.netloc

    def request_parts(
        self, phone: str, payload: Mapping[str, Any], key: str
    ) -> tuple[dict[str, str], str]:
        params = payload.get("params", {})
        body = json.dumps(
            {
                "PhoneNumberSet": [phone if phone.startswith("+") else "+86" + phone],
                "SmsSdkAppId": self._s.sdk_app_id,
                "SignName": self._s.sign_name,
                "TemplateId": self._s.template_id,
                "TemplateParamSet": [str(params.get(k, "")) for k in ("hall", "event", "detail")],
                "SessionContext": key[:512],
            },
            ensure_ascii=False,
        )
        ts = int(self._clock())
        headers = {
            "Authorization": tc3_authorization(
                self._s.secret_id,
                self._s.secret_key,
                service="sms",
                host=self._host,
                payload=body,
                timestamp=ts,
            ),
            "Content-Type": TC3_CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(ts),
            "X-TC-Version": "2021-01-11",
            "X-TC-Region": self._s.region,
        }
        return headers, body

    async def send(self, phone: str, payload: Mapping[str, Any], key: str) -> Result:
        headers, body = self.request_parts(phone, payload, key)
        reply = await request(
            self._session,
            "POST",
            self._s.endpoint,
            timeout_s=self._s.timeout_s,
            data=body.encode(),
            headers=headers,
        )
        if isinstance(reply, Result):
            return reply
        return self._read(reply)

    @staticmethod
    def _read(reply: Reply) -> Result:
        data = reply.json()
        resp = data.get("Response") if isinstance(data, dict) else None
        if reply.status >= 500 or not isinstance(resp, dict):
            return Result(RETRY, f"tencent HTTP {reply.status}")
        err = resp.get("Error")
        if isinstance(err, dict):
            code = str(err.get("Code", ""))
            detail = f"tencent {code}: {str(err.get('Message', ''))[:200]}"
            transient = code.startswith(("RequestLimitExceeded", "InternalError")) or code in (
                "ResourceUnavailable",
                "FailedOperation.ServiceUnavailable",
            )
            return Result(RETRY if transient else FAILED, detail, throttled="Limit" in code)
        statuses = resp.get("SendStatusSet") or []
        if statuses and all(isinstance(s, dict) and s.get("Code") == "Ok" for s in statuses):
            return Result(SENT, f"tencent Ok {statuses[0].get('SerialNo', '')}")
        first = statuses[0] if statuses and isinstance(statuses[0], dict) else {}
        code = str(first.get("Code", "?"))
        detail = f"tencent {code}: {str(first.get('Message', ''))[:200]}"
        if code.startswith("LimitExceeded"):
            return Result(RETRY, detail, retry_after=600.0, throttled=True)
        return Result(FAILED, detail)


# --- generic gateway --------------------------------------------------------------------------


class GenericSms:
    """POST {"phone", "text", "key"} as JSON; 2xx is success, 429 and 5xx are retried."""

    def __init__(self, session: aiohttp.ClientSession, s: SmsSettings) -> None:
        self._session, self._s = session, s

    async def send(self, phone: str, payload: Mapping[str, Any], key: str) -> Result:
        headers = {"Idempotency-Key": key}
        if self._s.token:
            headers["Authorization"] = f"Bearer {self._s.token}"
        reply = await request(
            self._session,
            "POST",
            self._s.endpoint,
            timeout_s=self._s.timeout_s,
            json={"phone": phone, "text": payload.get("text", ""), "key": key},
            headers=headers,
        )
        return reply if isinstance(reply, Result) else by_status(reply, "sms gateway")


def provider(
    session: aiohttp.ClientSession, s: SmsSettings, *, clock: Callable[[], float]
) -> SmsProvider | None:
    if s.provider == "aliyun":
        return AliyunSms(session, s, clock=clock)
    if s.provider == "tencent":
        return TencentSms(session, s, clock=clock)
    if s.provider == "generic":
        return GenericSms(session, s)
    return None


class SmsChannel:
    name = "sms"

    def __init__(self, provider: SmsProvider) -> None:
        self._provider = provider

    def ready_at(self, note: Notification, now: float) -> float:
        return now

    async def send(self, note: Notification) -> Result:
        return await self._provider.send(note.target, note.payload, note.key)
