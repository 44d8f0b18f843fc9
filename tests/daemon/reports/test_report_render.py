"""The report page in Debian's headless Chromium: it renders and prints without an error."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hallwatch.daemon.reports import charts as report_charts
from hallwatch.daemon.reports import html as report_html
from hallwatch.daemon.reports.figures import Report

from tests.daemon.reports.test_report import built_history
from tests.daemon.web.test_screen import ARTIFACTS, ROOT, Browser

DOCS_SHOT = ROOT / "docs" / "report-sample.png"


class LoggingBrowser(Browser):
    """The screen tests' browser, keeping the DevTools events it would otherwise skip."""

    def __init__(self, profile: Path) -> None:
        super().__init__(profile)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=60)
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})  # type: ignore[no-any-return]
            if "method" in msg:
                self.events.append(msg)

    def errors(self) -> list[dict[str, Any]]:
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(e)
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(e)
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(e)
        return out


@pytest.fixture(scope="module")
def rep() -> Report:
    return built_history().report  # built outside the test's event loop


async def test_report_renders_and_prints_in_chromium(rep: Report, tmp_path: Path) -> None:
    """The page loads from a file with no console error and no request beyond itself, shows the
    Chinese headings and the figures, draws its charts, and prints to a multi-page PDF. A
    screenshot goes to artifacts/ (and to docs/ when missing or HALLWATCH_UPDATE_SCREENSHOT)."""
    out = tmp_path / "report"
    report_html.write(rep, out)
    page = (out / "report.html").resolve().as_uri()
    async with LoggingBrowser(tmp_path / "chromium") as browser:
        await browser.call("Runtime.enable")
        await browser.call("Log.enable")
        await browser.call("Network.enable")
        await browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=1600,
            deviceScaleFactor=1,
            mobile=False,
        )
        await browser.call("Page.navigate", url=page)
        for _ in range(100):
            if await browser.js("document.readyState") == "complete":
                break
        text = await browser.text()
        flat = re.sub(r"\s", "", text)
        for heading in (
            "住房公积金服务大厅运行报告",
            "高峰期应急处置",
            "信息系统故障",
            "投诉处理",
            "服务情况",
            "设备运行",
            "设备故障排名",
        ):
            assert heading in text
        s = next(x for x in rep.summaries if x.hall == "h1")
        assert f"h1{s.days}{s.issued}{s.served}" in flat  # the summary row, as computed
        assert "45分钟" in flat and "dc-d2" in flat and "2026-10-09" in flat
        charts = await browser.js("document.querySelectorAll('svg.chart').length")
        assert charts == sum(len(v) for v in report_charts.charts(rep).values()) and charts >= 5
        widths = await browser.js(
            "[...document.querySelectorAll('svg.chart')].map(s => s.getBoundingClientRect().width)"
        )
        assert min(widths) > 300
        requests = [
            e["params"]["request"]["url"]
            for e in browser.events
            if e["method"] == "Network.requestWillBeSent"
        ]
        assert requests == [page]
        assert browser.errors() == []
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.screenshot(ARTIFACTS / "report.png")
        if not DOCS_SHOT.exists() or os.environ.get("HALLWATCH_UPDATE_SCREENSHOT"):
            DOCS_SHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(ARTIFACTS / "report.png", DOCS_SHOT)
        pdf = base64.b64decode(
            (await browser.call("Page.printToPDF", preferCSSPageSize=True))["data"]
        )
        (ARTIFACTS / "report.pdf").write_bytes(pdf)
        assert pdf.startswith(b"%PDF")
        assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 3
        assert browser.errors() == []
