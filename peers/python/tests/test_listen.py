"""The unix listener's directory rule: the same as the Rust listener's (PROTOCOL.md
section 2): a directory it creates is 0700; an existing one others can write to without
the sticky bit is refused; a sticky one is accepted; the directory's mode is never
changed."""

from __future__ import annotations

import os
import stat
import tempfile
import unittest

import ipc_peer


class DirectoryRuleTest(unittest.TestCase):
    def listen_in(self, mode: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            directory = os.path.join(tmp, "d")
            os.mkdir(directory)
            os.chmod(directory, mode)
            try:
                with ipc_peer.listen(f"unix:{directory}/s.sock"):
                    pass
            finally:
                self.assertEqual(stat.S_IMODE(os.stat(directory).st_mode), mode)
                os.chmod(directory, 0o700)

    def test_a_private_or_sticky_directory_is_accepted(self) -> None:
        for mode in (0o700, 0o755, 0o1777):
            with self.subTest(mode=oct(mode)):
                self.listen_in(mode)

    def test_a_directory_others_can_write_is_refused(self) -> None:
        for mode in (0o777, 0o770, 0o702):
            with self.subTest(mode=oct(mode)):
                with self.assertRaises(PermissionError) as refused:
                    self.listen_in(mode)
                self.assertIn("other users could remove or replace", str(refused.exception))

    def test_a_missing_directory_is_created_0700(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            directory = os.path.join(tmp, "new", "deeper")
            with ipc_peer.listen(f"unix:{directory}/s.sock"):
                mode = stat.S_IMODE(os.stat(directory).st_mode)
            self.assertEqual(mode, 0o700)


if __name__ == "__main__":
    unittest.main()
