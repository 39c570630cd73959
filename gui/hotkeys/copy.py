"""Copy-then-read: press the platform's Copy in the focused app, for quick-speak.

Windows and macOS have no PRIMARY selection, so quick-speak asks the focused
application to copy its selection (Ctrl+C or Cmd+C, sent as synthetic key
events) and then reads the clipboard. The user is still holding the hotkey's
modifiers when it fires, so we first wait (briefly) for them to be released;
otherwise the app would see Ctrl+Alt+C. On macOS posting key events needs the
Accessibility permission; without it nothing is copied and quick-speak falls
back to what the clipboard already held. Not testable on Linux.
"""

from __future__ import annotations

import ctypes
import sys
import time

#: How long to wait for the hotkey's modifiers to be released before copying anyway.
RELEASE_WAIT_S = 0.6


def _windows_copy() -> bool:
    user32 = ctypes.windll.user32  # type: ignore[attr-defined]
    vk_shift, vk_control, vk_menu, vk_lwin, vk_rwin, vk_c = 0x10, 0x11, 0x12, 0x5B, 0x5C, 0x43
    keyup = 0x2
    deadline = time.monotonic() + RELEASE_WAIT_S
    while time.monotonic() < deadline and any(
        user32.GetAsyncKeyState(vk) & 0x8000 for vk in (vk_shift, vk_control, vk_menu, vk_lwin, vk_rwin)
    ):
        time.sleep(0.01)
    for vk, flags in ((vk_control, 0), (vk_c, 0), (vk_c, keyup), (vk_control, keyup)):  # Ctrl down, C, Ctrl up
        user32.keybd_event(vk, 0, flags, 0)
    return True


def _mac_copy() -> bool:
    app_services = ctypes.CDLL("/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices")
    app_services.CGEventSourceFlagsState.restype = ctypes.c_uint64
    app_services.CGEventSourceFlagsState.argtypes = [ctypes.c_int32]
    app_services.CGEventCreateKeyboardEvent.restype = ctypes.c_void_p
    app_services.CGEventCreateKeyboardEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint16, ctypes.c_bool]
    app_services.CGEventSetFlags.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    app_services.CGEventPost.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
    app_services.CFRelease.argtypes = [ctypes.c_void_p]
    if hasattr(app_services, "AXIsProcessTrusted") and not app_services.AXIsProcessTrusted():
        return False  # no Accessibility permission: the events would be dropped silently
    combined_session_state, hid_event_tap = 0, 0
    shift, control, option, command = 1 << 17, 1 << 18, 1 << 19, 1 << 20
    deadline = time.monotonic() + RELEASE_WAIT_S
    while time.monotonic() < deadline and app_services.CGEventSourceFlagsState(combined_session_state) & (
        shift | control | option | command
    ):
        time.sleep(0.01)
    for down in (True, False):
        event = app_services.CGEventCreateKeyboardEvent(None, 8, down)  # 8: the C key
        app_services.CGEventSetFlags(event, command)
        app_services.CGEventPost(hid_event_tap, event)
        app_services.CFRelease(event)
    return True


def send_copy() -> bool:
    """Ask the focused app to copy its selection; False when this platform cannot."""
    try:
        if sys.platform == "win32":
            return _windows_copy()
        if sys.platform == "darwin":
            return _mac_copy()
    except (OSError, AttributeError):
        return False
    return False
