#!/usr/bin/env python3
"""fxc on a real terminal, driven through tmux: the progress bar at 60 and 200
columns (one row, redrawn in place, the file name whole), and the shell's line
editing, history and tab completion, and Ctrl-C during a transfer.

Usage: fxc_tmux_test.py PATH/TO/fxd PATH/TO/fxc
Exit status 77 (skipped) when tmux is not installed.
Set FXC_TMUX_SCREENS=DIR to keep the screens seen, as text, in DIR.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

FXD = ""
FXC = ""
PASSWORD = "correct-horse-1"


class Daemon:
    """fxd on ports 0 with its own storage (fast password hashing); stopped with SIGTERM."""

    def __init__(self, folder):
        self.log = open(os.path.join(folder, "fxd.log"), "wb")
        self.proc = subprocess.Popen(
            [FXD, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", f"storage.dir={folder}/storage",
             "--set", "auth.hash_memory_bytes=65536", "--set", "auth.hash_passes=1", "--print-ports"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        ports = dict(kv.split("=") for kv in line.split())
        self.tcp = int(ports["tcp"])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


class Tmux:
    """One tmux server of our own (its own socket), one window of a given size."""

    def __init__(self, folder, name, columns, rows, command, env):
        self.socket = os.path.join(folder, f"tmux-{name}")
        self.target = name
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        # The pane stays after the program ends, so its last screen can be read.
        self.run("new-session", "-d", "-s", name, "-x", str(columns), "-y", str(rows),
                 f"env {exports} {command}; echo '[exit '$?']'; sleep 600")

    def run(self, *args):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "TERM": "xterm-256color"})

    def keys(self, *keys):
        self.run("send-keys", "-t", self.target, *keys)

    def screen(self):
        return self.run("capture-pane", "-p", "-N", "-t", self.target).stdout

    def wait_for(self, text, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}")

    def close(self):
        self.run("kill-server")


def keep_screen(name, screen):
    folder = os.environ.get("FXC_TMUX_SCREENS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name + ".txt"), "w") as f:
            f.write("\n".join(row.rstrip() for row in screen.rstrip().splitlines()) + "\n")


class OnATerminal(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fxc-tmux-")
        self.daemon = Daemon(self.dir)
        self.env = {"XDG_CONFIG_HOME": os.path.join(self.dir, "config"),
                    "XDG_STATE_HOME": os.path.join(self.dir, "state"), "TERM": "xterm-256color"}
        self.tmuxes = []
        self.fxc("--user", "alice", "register")

    def tearDown(self):
        for t in self.tmuxes:
            t.close()
        self.daemon.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def fxc(self, *args):
        r = subprocess.run([FXC, "--port", str(self.daemon.tcp), *args], capture_output=True, text=True, timeout=120,
                           env={**os.environ, **self.env, "FXC_PASSWORD": PASSWORD}, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def tmux(self, name, columns, rows, args, env=None):
        command = " ".join([FXC, "--port", str(self.daemon.tcp), *args])
        t = Tmux(self.dir, name, columns, rows, command, {**self.env, **(env or {})})
        self.tmuxes.append(t)
        return t

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_the_progress_bar_fits_60_and_200_columns(self):
        name = "quarterly-report-2026.bin"
        with open(self.path(name), "wb") as f:
            f.write(os.urandom(64 * 1024 * 1024))
        for columns in (60, 200):
            t = self.tmux(f"bar{columns}", columns, 12, ["--user", "alice", "upload", self.path(name)],
                          {"FXC_PASSWORD": PASSWORD})
            screen = t.wait_for("[exit ")
            keep_screen(f"progress-{columns}", screen)
            self.assertIn("[exit 0]", screen)
            rows = screen.splitlines()
            bars = [r for r in rows if "%" in r]
            # One row per bar (hashing, upload): redrawn in place, never wrapped onto more rows.
            self.assertEqual(len(bars), 2, screen)
            upload = [r for r in bars if r.startswith("upload ")]
            self.assertEqual(len(upload), 1, screen)
            bar = upload[0].rstrip()
            self.assertIn(f"upload {name} [", bar)  # the name whole
            self.assertIn("100%", bar)
            self.assertLess(len(bar), columns, bar)
            if columns == 200:
                self.assertIn("64.0 MiB / 64.0 MiB", bar)  # room for every figure

    def test_the_shell_edits_lines_keeps_history_and_completes(self):
        for n in ("report-2026.txt", "notes.txt"):
            with open(self.path(n), "w") as f:
                f.write(n)
            self.fxc("--user", "alice", "upload", self.path(n))
        t = self.tmux("shell", 100, 30, ["shell"])
        t.wait_for("fxc> ")
        # Ctrl-C at the password question drops the question, not the shell.
        t.keys("login alice", "Enter")
        t.wait_for("password: ")
        t.keys("half a pass", "C-c")
        t.wait_for("password: \nfxc> ")
        t.keys("login alice", "Enter")
        t.wait_for("fxc> login alice\npassword: ")
        t.keys(PASSWORD, "Enter")
        t.wait_for("fxc [alice]> ")

        # Tab completes a command, then a name stored on the server.
        t.keys("ge", "Tab")
        t.wait_for("fxc [alice]> get ")
        t.keys("rep", "Tab")
        screen = t.wait_for("fxc [alice]> get report-2026.txt")
        keep_screen("completion", screen)
        t.keys("C-u")

        # Editing: the cursor goes home to fix the first letter; backspace mends a typo.
        t.keys("tat notes.txt", "C-a", "s", "Enter")
        t.wait_for("name:    notes.txt")
        t.keys("lx", "BSpace", "s", "Enter")
        t.wait_for("SIZE")
        t.keys("Up", "Up")
        t.wait_for("fxc [alice]> stat notes.txt")
        t.keys("C-u")

        # Ctrl-C at the prompt drops the line, not the shell.
        t.keys("half a line", "C-c")
        time.sleep(0.3)
        t.keys("help", "Enter")
        screen = t.wait_for("tab completes")
        keep_screen("shell-session", screen)
        self.assertNotIn("^[[A", screen)  # arrows edit, they are not printed
        t.keys("quit", "Enter")
        t.wait_for("[exit 0]")

        # The history outlives the shell, in a file of the user's own.
        history = os.path.join(self.env["XDG_STATE_HOME"], "fxc", "history")
        self.assertTrue(os.path.isfile(history))
        self.assertEqual(os.stat(history).st_mode & 0o777, 0o600)
        again = self.tmux("again", 100, 30, ["shell"])
        again.wait_for("fxc> ")
        again.keys("Up")
        again.wait_for("fxc> quit")

    def test_ctrl_c_cancels_a_transfer_and_keeps_the_shell(self):
        big = self.path("big.bin")
        with open(big, "wb") as f:
            f.truncate(1024 * 1024 * 1024)  # sparse: cheap here, a real gigabyte for the server
        t = self.tmux("cancel", 120, 30, ["shell"])
        t.wait_for("fxc> ")
        t.keys("login alice", "Enter")
        t.wait_for("password: ")
        t.keys(PASSWORD, "Enter")
        t.wait_for("fxc [alice]> ")
        t.keys(f"put {big}", "Enter")
        t.wait_for("upload big.bin [")
        t.keys("C-c")
        screen = t.wait_for("run the same command again to resume")
        keep_screen("cancelled", screen)
        t.wait_for("fxc [alice]> ")
        t.keys("stat big.bin", "Enter")
        screen = t.wait_for("partial:")
        self.assertIn("no (only an interrupted upload)", screen)
        t.keys(f"put {big}", "Enter")
        t.wait_for("resumed", seconds=120)
        t.keys("quit", "Enter")
        t.wait_for("[exit 0]")

    def test_bash_completes_commands_and_the_servers_names(self):
        with open(self.path("report-2026.txt"), "w") as f:
            f.write("r")
        self.fxc("--user", "alice", "upload", self.path("report-2026.txt"))
        self.fxc("--user", "alice", "login")  # remembered: completion never asks for a password
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "client", "completion",
                              "fxc.bash")

        def complete(*words):
            line = " ".join(f"'{w}'" for w in words)
            r = subprocess.run(
                ["bash", "--norc", "-c",
                 f'source "{script}"; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _fxc; '
                 'printf "%s\\n" "${COMPREPLY[@]}"'],
                capture_output=True, text=True, timeout=60,
                env={**os.environ, **self.env, "PATH": os.path.dirname(FXC) + ":" + os.environ["PATH"]})
            return r.stdout.split()

        self.assertEqual(complete("fxc", "up"), ["upload"])
        self.assertEqual(complete("fxc", "--port", str(self.daemon.tcp), "download", "rep"), ["report-2026.txt"])
        self.assertIn("--force", complete("fxc", "download", "--fo"))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: fxc_tmux_test.py PATH/TO/fxd PATH/TO/fxc")
    FXD, FXC = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if shutil.which("tmux") is None:
        print("tmux is not installed: skipped")
        sys.exit(77)
    unittest.main(argv=[sys.argv[0], *sys.argv[3:]])
