"""Preparation steps of a kernel: environment files, SSH keys, dotfiles, bootstrap script."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from typing import Any, Dict, List, Optional


class ContainerUser:
    """Who user processes run as."""

    def __init__(self, name: str, uid: int, gid: int, home: str, groups: List[int]) -> None:
        self.name, self.uid, self.gid, self.home, self.groups = name, uid, gid, home, groups

    def env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(HOME=self.home, USER=self.name, LOGNAME=self.name,
                   SHELL=shell_path())
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env.setdefault("LANG", "C.UTF-8")
        return env

    def popen_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of (asyncio) subprocess calls that run as this user."""
        if os.getuid() != 0:
            return {"cwd": self.home}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups),
                "cwd": self.home}


def shell_path() -> str:
    for sh in ("/bin/bash", "/usr/bin/bash", "/bin/sh"):
        if os.path.exists(sh):
            return sh
    return "/bin/sh"


def write_file(path: str, data: str, mode: int, user: Optional[ContainerUser] = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)
    os.chmod(path, mode)
    if user is not None and os.getuid() == 0:
        os.chown(path, user.uid, user.gid)


def env_file_lines(environ: Dict[str, str]) -> List[str]:
    return [f"{k}={v}" for k, v in sorted(environ.items()) if "\n" not in v]


def profile_lines(environ: Dict[str, str]) -> List[str]:
    return [f"export {k}={shlex.quote(v)}" for k, v in sorted(environ.items())
            if k.isidentifier()]


def write_environment(environ: Dict[str, str], resources: Dict[str, str],
                      config_dir: str = "/home/config", profile_dir: str = "/etc/profile.d") -> None:
    """``/home/config/environ.txt`` (KEY=VALUE lines), ``/home/config/resource.txt`` and
    ``/etc/profile.d/workbay.sh`` (so login shells — ssh, terminals — see the same variables)."""
    os.makedirs(config_dir, exist_ok=True)
    write_file(os.path.join(config_dir, "environ.txt"), "\n".join(env_file_lines(environ)) + "\n",
               0o644)
    write_file(os.path.join(config_dir, "resource.txt"),
               "".join(f"{k}={v}\n" for k, v in sorted(resources.items())), 0o644)
    if os.path.isdir(profile_dir):
        write_file(os.path.join(profile_dir, "workbay.sh"),
                   "# Written by the Workbay runner\n" + "\n".join(profile_lines(environ)) + "\n",
                   0o644)


def ssh_keygen(path: str) -> bool:
    """An ed25519 key pair at ``path``/``path``.pub with ssh-keygen; False when it is missing."""
    exe = shutil.which("ssh-keygen")
    if exe is None:
        return False
    for p in (path, path + ".pub"):
        if os.path.exists(p):
            os.unlink(p)
    r = subprocess.run([exe, "-q", "-t", "ed25519", "-N", "", "-C", "work@workbay",
                        "-f", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return r.returncode == 0


# A session's own SSH files live outside the home: ``~/.ssh`` may be the user's persistent `.ssh`
# automount folder, which must neither collect the keys of every past session (each would stay
# authorized for later ones) nor be modified by the runner at all.  sshd reads both this
# directory's authorized_keys and the user's ``~/.ssh/authorized_keys`` (services._sshd).
SESSION_SSH_DIR = "/etc/workbay/ssh"
# ``ssh sub1`` between cluster containers: a system-wide client config instead of ``~/.ssh/config``.
SSH_CLIENT_CONFIG = "/etc/ssh/ssh_config.d/workbay-cluster.conf"
SSH_SYSTEM_CONFIG = "/etc/ssh/ssh_config"


def session_ssh_dir(user: ContainerUser) -> str:
    """Where this session's authorized_keys and cluster key live.  A runner without root cannot
    write /etc (nor run sshd for another user); it keeps them in the container's home instead."""
    if os.getuid() == 0:
        return SESSION_SSH_DIR
    return os.path.join(user.home, ".workbay-session", "ssh")


def cluster_client_config(hosts: List[str], identity: str, sshd_port: Optional[int]) -> str:
    lines = ["# Written by the Workbay runner: ssh between this session's containers",
             f"Host {' '.join(hosts)}",
             f"  IdentityFile {identity}",
             "  StrictHostKeyChecking no",
             "  UserKnownHostsFile /dev/null",
             "  LogLevel ERROR"]
    if sshd_port:
        lines.append(f"  Port {sshd_port}")
    return "\n".join(lines) + "\n"


def include_client_config(system_config: str, client_config: str) -> None:
    """Make ``ssh`` read ``client_config``: images whose ssh_config already includes
    ``ssh_config.d`` need nothing; others get an Include line on top (before any Host block)."""
    existing = ""
    if os.path.exists(system_config):
        with open(system_config) as f:
            existing = f.read()
    wanted_dir = os.path.dirname(client_config)
    if wanted_dir + "/*" in existing or client_config in existing:
        return
    write_file(system_config, f"Include {client_config}\n" + existing, 0o644)


def setup_ssh(user: ContainerUser, fallback: Optional[Dict[str, str]], cluster: Optional[Dict[str, Any]],
              sshd_port: Optional[int], session_dir: Optional[str] = None,
              client_config: str = SSH_CLIENT_CONFIG,
              system_config: str = SSH_SYSTEM_CONFIG, extra_keys: Optional[List[str]] = None) -> str:
    """``~/id_container`` (session key; ssh-keygen in the image, else the agent's key), the
    session's ``authorized_keys`` in ``session_dir`` (root's, read by sshd next to the user's own
    ``~/.ssh/authorized_keys``), and for clusters ``session_dir/id_cluster`` plus a system-wide
    client config so that ``ssh sub1`` works between the containers.  ``extra_keys``: the public
    keys the owner registered (ID-13), accepted for this session too.  Nothing under ``~/.ssh`` is
    written: it may be the user's persistent `.ssh` folder.  Returns the session public key."""
    home = user.home
    session_dir = session_dir or session_ssh_dir(user)
    as_root = os.getuid() == 0
    os.makedirs(session_dir, mode=0o755, exist_ok=True)
    ssh_dir = os.path.join(home, ".ssh")
    if not os.path.lexists(ssh_dir):  # a place for the user's own keys; never touched if present
        os.makedirs(ssh_dir, mode=0o700)
        if as_root:
            os.chown(ssh_dir, user.uid, user.gid)
    key = os.path.join(home, "id_container")
    pub = ""
    if ssh_keygen(key):
        with open(key + ".pub") as f:
            pub = f.read().strip()
    elif fallback and fallback.get("private_key"):
        write_file(key, fallback["private_key"].rstrip("\n") + "\n", 0o600)
        pub = fallback.get("public_key", "").strip()
        if pub:
            write_file(key + ".pub", pub + "\n", 0o644)
    if as_root:
        for p in (key, key + ".pub"):
            if os.path.exists(p):
                os.chown(p, user.uid, user.gid)
    authorized = [pub] if pub else []
    if cluster and cluster.get("private_key"):
        identity = os.path.join(session_dir, "id_cluster")
        # the user's ssh client reads it: theirs, 0600 (ssh refuses keys others can read)
        write_file(identity, cluster["private_key"].rstrip("\n") + "\n", 0o600, user)
        cpub = cluster.get("public_key", "").strip()
        if cpub:
            write_file(identity + ".pub", cpub + "\n", 0o644, user)
            authorized.append(cpub)
        hosts = [h for h in cluster.get("hosts", []) if h]
        if hosts:
            write_file(client_config, cluster_client_config(hosts, identity, sshd_port), 0o644)
            include_client_config(system_config, client_config)
    authorized.extend(k.strip() for k in extra_keys or [] if k.strip() and "\n" not in k.strip())
    # Written whole every time, never merged: only this session's keys.  Root's file (sshd's
    # StrictModes accepts root or the user as owner); the user's own keys go to ~/.ssh.
    write_file(os.path.join(session_dir, "authorized_keys"),
               "".join(k + "\n" for k in dict.fromkeys(authorized)), 0o644)
    return pub


def dotfile_path(home: str, path: str) -> Optional[str]:
    """Where a dotfile goes: relative paths under home; absolute paths only inside home."""
    full = os.path.normpath(path if os.path.isabs(path) else os.path.join(home, path))
    if full == home or not full.startswith(home.rstrip("/") + "/"):
        return None
    return full


def apply_dotfiles(user: ContainerUser, dotfiles: List[Dict[str, Any]], log) -> int:
    n = 0
    for item in dotfiles:
        path = dotfile_path(user.home, str(item.get("path", "")))
        if path is None:
            log(f"dotfile {item.get('path')!r} skipped: only paths inside {user.home} are allowed")
            continue
        try:
            mode = int(str(item.get("perm", "644")), 8)
        except ValueError:
            mode = 0o644
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, exist_ok=True)
            if os.getuid() == 0:
                d = parent
                while d.startswith(user.home + "/"):
                    os.chown(d, user.uid, user.gid)
                    d = os.path.dirname(d)
        write_file(path, str(item.get("data", "")), mode & 0o777, user)
        n += 1
    return n
