"""Recipe runs forked from a process that has already imported the
libraries, for the test suite.

A fresh ``python train.py`` spends most of a one-epoch demo run
importing torch, SpeechBrain and transformers. :class:`Forkserver`
starts one Python process that imports them once; each run is then a
``fork`` of it that executes the script as ``__main__`` with its own
arguments, working directory, standard streams and exit status, as a
fresh process would, but without the imports. What a fork shares with
its siblings, unlike fresh processes, is the interpreter's hash seed:
tests that compare runs for identical results use fresh processes
(``run_recipe(..., fresh=True)``).

Run as a script, this module is the server: it reads one JSON request a
line on its standard input and answers each with the child's pid, then
its exit status, a line each.
"""

import json
import os
import select
import signal
import subprocess
import sys

#: Imported by the server before any fork: the recipe's own imports and
#: the ones its yaml makes (the Hugging Face encoder wrapper). Not a
#: module that a test runs with ``-m`` (runpy warns on stderr when the
#: module is imported already).
PRELOAD = (
    "speechbrain",
    "hyperpyyaml",
    "speechbrain.integrations.huggingface.wav2vec2",
    "speechbrain_grl.brain",
    "speechbrain_grl.dataio",
    "speechbrain_grl.dataio.prepare",
    "speechbrain_grl.evaluation.probe",
    "sklearn.linear_model",
)


class Forkserver:
    """A server process (started on first use) that forks recipe runs.

    Arguments
    ---------
    env : dict
        The environment of the server, hence of every run.
    """

    def __init__(self, env):
        self.env = env
        self.proc = None

    def _start(self):
        import tempfile

        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)], env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self._buffer = b""
        if self._line() != "ready":
            self.proc.wait()
            self.log.seek(0)
            raise RuntimeError(f"forkserver did not start:\n"
                               f"{self.log.read()[-3000:]}")

    def _line(self, timeout=None):
        """The server's next line, or None after ``timeout`` seconds."""
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError("the forkserver ended")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def run(self, argv, cwd, out, err, timeout):
        """Runs ``argv`` (a script and its arguments, or ``-m``, a module
        and its arguments) in ``cwd`` with
        standard output and error to the files ``out`` and ``err``;
        returns the exit status, or None when it was killed after
        ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        request = {"argv": [str(a) for a in argv], "cwd": str(cwd),
                   "out": str(out), "err": str(err)}
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        pid = int(self._line())
        code = self._line(timeout)
        if code is not None:
            return int(code)
        os.kill(pid, signal.SIGKILL)
        self._line()  # its status
        return None

    def close(self):
        """Stops the server."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _child(request):
    """In the forked child: becomes ``python argv...`` in ``cwd``
    (``argv``: a script and its arguments, or ``-m``, a module and its
    arguments)."""
    import runpy

    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    for fd, path in ((1, request["out"]), (2, request["err"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    os.chdir(request["cwd"])
    argv = request["argv"]
    if argv[0] == "-m":  # python -m module args...
        sys.argv = argv[1:]
        sys.path[0] = os.getcwd()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:  # python script args...
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")
    sys.exit(0)


def serve():
    """The server loop (see the module's docstring)."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)  # never returns: the script's exit ends it
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    serve()
