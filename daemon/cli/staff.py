"""`hallwatch complaint ...` and `hallwatch callback ...`: the staff API from a terminal.

Each command talks to the running daemon's HTTP API (`--url`, default `$HALLWATCH_URL` or
http://127.0.0.1:9120) with a staff token (`--token`, or `$HALLWATCH_TOKEN`, or the file named
by `$HALLWATCH_TOKEN_FILE`), prints the answer as JSON, and exits 0 on success, 1 when the daemon
refused (the reason on stderr), 2 when it could not be reached or no token was given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from hallwatch.daemon.staff.complaints import ACTIONS, CHANNELS, SEVERITIES


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    if os.environ.get("HALLWATCH_TOKEN"):
        return os.environ["HALLWATCH_TOKEN"]
    path = os.environ.get("HALLWATCH_TOKEN_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def call(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    """(HTTP status, body) of one request to the daemon; status 0 if it could not be reached."""
    token = _token(args)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body, ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(args.url.rstrip("/") + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, OSError) as err:
        return 0, str(getattr(err, "reason", err)).encode()


def _finish(status: int, body: bytes, *, raw_out: str | None = None) -> int:
    if status == 0:
        print(
            f"hallwatch: cannot reach the daemon: {body.decode(errors='replace')}", file=sys.stderr
        )
        return 2
    if status >= 400:
        try:
            err = json.loads(body)
            msg = f"{err.get('error')}: {err.get('message', '')}"
        except ValueError:
            msg = body.decode(errors="replace")
        print(f"hallwatch: HTTP {status}: {msg}", file=sys.stderr)
        return 1
    if raw_out is not None:
        if raw_out == "-":
            sys.stdout.write(body.decode("utf-8"))
        else:
            Path(raw_out).write_bytes(body)
            print(f"wrote {raw_out}", file=sys.stderr)
        return 0
    print(json.dumps(json.loads(body), ensure_ascii=False, indent=2))
    return 0


def _q(params: dict[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "", False)}
    return ("?" + urlencode(kept)) if kept else ""


def _p(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def cmd_complaint(args: argparse.Namespace) -> int:
    if not _token(args):
        print("hallwatch: give --token or set HALLWATCH_TOKEN", file=sys.stderr)
        return 2
    w = args.what
    if w == "add":
        body = {
            "hall": args.hall,
            "channel": args.channel,
            "severity": args.severity,
            "summary": args.summary,
            "received_by": args.received_by,
        }
        for k in ("phone", "department"):
            if getattr(args, k):
                body[k] = getattr(args, k)
        if args.id:
            body["complaint_id"] = args.id
        return _finish(*call(args, "POST", "/api/v1/complaints", body))
    if w == "list":
        q = _q({"hall": args.hall, "state": args.state, "open": "1" if args.open else ""})
        return _finish(*call(args, "GET", "/api/v1/complaints" + q))
    if w == "show":
        return _finish(*call(args, "GET", "/api/v1/complaints/" + _p(args.hall, args.id)))
    if w == "export":
        q = _q({"hall": args.hall, "state": args.state, "from": args.since, "to": args.until})
        status, csv_body = call(args, "GET", "/api/v1/complaints/archive.csv" + q)
        return _finish(status, csv_body, raw_out=args.out)
    # a step of the procedure
    step: dict[str, Any] = {"action": w.replace("-", "_"), "by": args.by}
    for k in ("note", "proposal", "to_department", "to_person"):
        if getattr(args, k, None):
            step[k] = getattr(args, k)
    path = "/api/v1/complaints/" + _p(args.hall, args.id) + "/transitions"
    return _finish(*call(args, "POST", path, step))


def cmd_callback(args: argparse.Namespace) -> int:
    if not _token(args):
        print("hallwatch: give --token or set HALLWATCH_TOKEN", file=sys.stderr)
        return 2
    if args.what == "add":
        req = {"hall": args.hall, "name": args.name, "phone": args.phone, "by": args.by}
        if args.note:
            req["note"] = args.note
        return _finish(*call(args, "POST", "/api/v1/callbacks", req))
    if args.what == "list":
        pending = {"pending": "1", "notified": "0"}.get(args.only or "", "")
        return _finish(
            *call(args, "GET", "/api/v1/callbacks" + _q({"hall": args.hall, "pending": pending}))
        )
    if args.what == "outages":
        return _finish(*call(args, "GET", "/api/v1/outages"))
    expect = {"by": args.by, "expected_recovery_at": args.at or None}
    return _finish(*call(args, "PUT", "/api/v1/outages/" + _p(args.hall), expect))


def cmd_paper(args: argparse.Namespace) -> int:
    if not _token(args):
        print("hallwatch: give --token or set HALLWATCH_TOKEN", file=sys.stderr)
        return 2
    if args.what == "add":
        req = {
            "hall": args.hall,
            "service": args.service,
            "name": args.name,
            "documents": args.documents,
            "by": args.by,
        }
        for k in ("phone", "note"):
            if getattr(args, k):
                req[k] = getattr(args, k)
        return _finish(*call(args, "POST", "/api/v1/paper", req))
    if args.what == "list":
        pending = {"pending": "1", "entered": "0"}.get(args.only or "", "")
        return _finish(
            *call(args, "GET", "/api/v1/paper" + _q({"hall": args.hall, "pending": pending}))
        )
    done = {"by": args.by, "reference": args.reference}
    return _finish(*call(args, "POST", f"/api/v1/paper/{args.id}/entered", done))


def _paper_parsers(sub: Any) -> None:
    pp = sub.add_parser("paper", help="paper intake during an outage, entered later (plan 4.3)")
    psub = pp.add_subparsers(dest="what", required=True)
    padd = psub.add_parser("add", help="register documents taken on paper while a system is down")
    padd.add_argument("--hall", required=True)
    padd.add_argument("--service", required=True, help="the business, e.g. 提取")
    padd.add_argument("--name", required=True, help="the customer's name")
    padd.add_argument("--documents", required=True, help="what was taken, e.g. 身份证复印件")
    padd.add_argument("--by", required=True, help="who took it")
    padd.add_argument("--phone", help="the customer's phone (stored; shown masked)")
    padd.add_argument("--note")
    plist = psub.add_parser("list", help="the register; --only pending: what is left to enter")
    plist.add_argument("--hall")
    plist.add_argument("--only", choices=["pending", "entered"])
    pdone = psub.add_parser("entered", help="entered into the business system (补录)")
    pdone.add_argument("id", type=int)
    pdone.add_argument("--by", required=True, help="who entered it")
    pdone.add_argument("--reference", required=True, help="the business system's number")
    for p in (padd, plist, pdone):
        _client(p)
    pp.set_defaults(func=cmd_paper)


def _client(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=os.environ.get("HALLWATCH_URL", "http://127.0.0.1:9120"),
        help="the daemon's HTTP address (or env HALLWATCH_URL)",
    )
    p.add_argument(
        "--token", help="staff API token (or env HALLWATCH_TOKEN / HALLWATCH_TOKEN_FILE)"
    )
    p.add_argument("--timeout", type=float, default=10.0, help=argparse.SUPPRESS)


def add_parsers(sub: Any) -> None:
    """Add `complaint`, `callback` and `paper` to the `hallwatch` command's subparsers."""
    comp = sub.add_parser("complaint", help="complaints (plan 4.2) through the running daemon")
    csub = comp.add_subparsers(dest="what", required=True)
    add = csub.add_parser("add", help="register a complaint")
    add.add_argument("--hall", required=True)
    add.add_argument("--channel", choices=CHANNELS, required=True)
    add.add_argument("--severity", choices=SEVERITIES, default="normal")
    add.add_argument("--summary", required=True)
    add.add_argument("--received-by", required=True, help="staff who took it (first responsible)")
    add.add_argument("--phone", help="the complainant's phone (stored; shown masked)")
    add.add_argument("--department", help="the department handling it")
    add.add_argument("--id", help="the registration form's number (default: generated)")
    lst = csub.add_parser("list", help="list complaints")
    lst.add_argument("--hall")
    lst.add_argument("--state")
    lst.add_argument("--open", action="store_true", help="only those not archived")
    show = csub.add_parser("show", help="one complaint with its history")
    show.add_argument("hall")
    show.add_argument("id")
    exp = csub.add_parser("export", help="the archive as CSV, one row per history step")
    exp.add_argument("--out", default="-", help="file to write (default: stdout)")
    exp.add_argument("--hall")
    exp.add_argument("--state", help="e.g. archived")
    exp.add_argument("--from", dest="since", help="received on or after YYYY-MM-DD")
    exp.add_argument("--to", dest="until", help="received on or before YYYY-MM-DD")
    helps = {
        "verify": "checked, with the proposed answer (--proposal)",
        "approve": "the department head approved the proposal",
        "answer": "the complainant was answered",
        "follow-up": "the follow-up call (回访) was made",
        "archive": "archive it",
        "transfer": "hand it to another department (--to-department, --to-person)",
        "escalate": "serious: report to the centre director's office",
        "note": "record contact with the complainant",
    }
    assert {k.replace("-", "_") for k in helps} == set(ACTIONS)
    for action, text in helps.items():
        a = csub.add_parser(action, help=text)
        a.add_argument("hall")
        a.add_argument("id")
        a.add_argument("--by", required=True, help="who did it")
        a.add_argument("--note")
        if action == "verify":
            a.add_argument("--proposal", required=True)
        if action == "transfer":
            a.add_argument("--to-department", required=True)
            a.add_argument("--to-person")
    for p in [add, lst, show, exp, *[csub.choices[a] for a in helps]]:
        _client(p)
    comp.set_defaults(func=cmd_complaint)

    cb = sub.add_parser("callback", help="outage call-back register (plan 4.3)")
    bsub = cb.add_subparsers(dest="what", required=True)
    badd = bsub.add_parser("add", help="register a customer to be told when the system is back")
    badd.add_argument("--hall", required=True)
    badd.add_argument("--name", required=True)
    badd.add_argument("--phone", required=True)
    badd.add_argument("--by", required=True, help="who registered it")
    badd.add_argument("--note")
    blist = bsub.add_parser("list", help="registered call-backs and their SMS")
    blist.add_argument("--hall")
    blist.add_argument("--only", choices=["pending", "notified"])
    bout = bsub.add_parser("outages", help="halls with a system down now")
    bexp = bsub.add_parser("expect", help="set the expected recovery time shown on the screen")
    bexp.add_argument("hall")
    bexp.add_argument("--at", help="HH:MM today or an RFC 3339 time; omit to clear")
    bexp.add_argument("--by", required=True)
    for p in (badd, blist, bout, bexp):
        _client(p)
    cb.set_defaults(func=cmd_callback)
    _paper_parsers(sub)
