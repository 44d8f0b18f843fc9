"""The words people read: one Chinese label per code, for alerts, the screen and the reports.

Every message, page and table takes its labels from here, so a device kind or a level reads the
same in a WeCom alert, an SMS and the centre's report.
"""

from __future__ import annotations

ALERTS = {
    "queue_peak": "排队高峰",
    "device_offline": "设备离线",
    "system_outage": "信息系统故障",
    "system_degraded": "信息系统运行缓慢",
    "service_uncovered": "业务无窗口",
}
ALERT_STATES = {
    "firing": "告警",
    "escalated": "升级",
    "repeat": "未确认提醒",
    "resolved": "已恢复",
    "relapsed": "再次告警",
}
LEVELS = {1: "一级", 2: "二级", 3: "三级"}
ROLES = {"supervisor": "大厅负责人", "director": "中心主任室", "info_centre": "信息中心"}
DEVICE_KINDS = {
    "ticket_machine": "取号机",
    "door_counter": "客流计数器",
    "window_terminal": "窗口终端",
    "display": "显示屏",
    "other": "其他设备",
}
SYSTEM_STATES = {"down": "中断", "degraded": "降级", "up": "正常"}
COMPLAINT_CHANNELS = {"visit": "现场", "phone": "电话", "letter": "信函", "online": "网络"}
SEVERITIES = {"normal": "一般", "serious": "严重"}
