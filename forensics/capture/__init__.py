"""Web evidence capture in a checked clean browser (issue 15 items 1-2, REQUIREMENTS E2).

``check_environment(settings)`` is the cleanliness report taken before every capture;
``capture(url, out_dir, settings)`` refuses (``CaptureRefused``) on a dirty environment, a
non-http(s) URL or the node's own API, and otherwise captures the page in Debian's Chromium
(driven by Playwright): full-page screenshot, screen recording (MP4), WARC 1.1, HAR, rendered
DOM, resolved addresses, TLS facts and certificate chains, every image/audio/video resource
as a file, the facts and a custody log, each hashed with SM3 as written. docs/capture.md is
the specification.
"""

from .environment import check_environment
from .run import capture
from .types import Artefact, CaptureRefused, CaptureResult, CaptureSettings

__all__ = ["Artefact", "CaptureRefused", "CaptureResult", "CaptureSettings", "capture", "check_environment"]
