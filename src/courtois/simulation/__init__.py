"""Replaying recorded history under another policy: pure, like `courtois.policy`."""
