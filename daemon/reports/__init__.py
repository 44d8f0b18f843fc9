"""The centre's reports: figures from stored events, HTML with inline SVG charts."""
