"""Preparation steps of the runner on a scratch filesystem."""

from __future__ import annotations

import json
import os

from workbay.runner import prepare, services, users
from workbay.runner.prepare import User


def test_ensure_user_creates_and_updates(tmp_path):
    etc = tmp_path
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000::/home/u:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nubuntu:x:1000:\n")
    (etc / "shadow").write_text("root:*:1::::::\n")
    gname = users.ensure_user("work", 1000, 1000, "/home/work", "/bin/bash", [27], etc=str(etc))
    assert gname == "ubuntu"  # the gid exists already: reused
    passwd = (etc / "passwd").read_text().splitlines()
    assert "work:x:1000:1000:Workbay user:/home/work:/bin/bash" in passwd
    assert "ubuntu:x:1000:1000::/home/u:/bin/sh" in passwd
    assert "work27:x:27:work" in (etc / "group").read_text()
    assert (etc / "shadow").read_text().splitlines()[-1].startswith("work:*:")
    # Idempotent, and a changed uid replaces the entry.
    users.ensure_user("work", 2000, 2000, "/home/work", "/bin/bash", [], etc=str(etc))
    passwd = (etc / "passwd").read_text().splitlines()
    assert sum(line.startswith("work:") for line in passwd) == 1
    assert "work:x:2000:2000:Workbay user:/home/work:/bin/bash" in passwd
    assert "work:x:2000:" in (etc / "group").read_text()


def test_sudo_only_when_enabled(tmp_path):
    assert not (tmp_path / "sudoers.d").exists()
    users.enable_sudo("work", etc=str(tmp_path))
    f = tmp_path / "sudoers.d" / "01-workbay-work"
    assert f.read_text() == "work ALL=(ALL:ALL) NOPASSWD:ALL\n"
    assert oct(f.stat().st_mode & 0o777) == "0o440"


def test_environment_files(tmp_path):
    prepare.write_environment({"A": "1", "B": "it's", "BAD-NAME": "x"}, {"cpu": "2"},
                              config_dir=str(tmp_path / "config"),
                              profile_dir=str(tmp_path))
    assert (tmp_path / "config" / "environ.txt").read_text() == "A=1\nB=it's\nBAD-NAME=x\n"
    assert (tmp_path / "config" / "resource.txt").read_text() == "cpu=2\n"
    profile = (tmp_path / "workbay.sh").read_text()
    assert "export A=1" in profile and "export B='it'\"'\"'s'" in profile
    assert "BAD-NAME" not in profile


def test_dotfiles_stay_in_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    user = User("me", os.getuid(), os.getgid(), str(home), [])
    assert prepare.dotfile_path(str(home), ".bashrc") == str(home / ".bashrc")
    assert prepare.dotfile_path(str(home), "../etc/x") is None
    assert prepare.dotfile_path(str(home), "/etc/sudoers.d/x") is None
    logged = []
    n = prepare.apply_dotfiles(user, [{"path": ".config/app/rc", "data": "x=1", "perm": "600"},
                                      {"path": "/etc/passwd", "data": "evil"}], logged.append)
    assert n == 1 and len(logged) == 1
    f = home / ".config" / "app" / "rc"
    assert f.read_text() == "x=1" and oct(f.stat().st_mode & 0o777) == "0o600"


def test_ssh_setup_with_agent_key_and_cluster(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    user = User("me", os.getuid(), os.getgid(), str(home), [])
    fallback = {"private_key": "PRIVATE", "public_key": "ssh-ed25519 AAAA session"}
    cluster = {"private_key": "CPRIV", "public_key": "ssh-ed25519 BBBB cluster",
               "hosts": ["main1", "sub1"]}
    pub = prepare.setup_ssh(user, fallback, cluster, 2200)
    assert pub  # ssh-keygen's key when it is installed, else the agent's
    assert (home / "id_container").exists()
    auth = (home / ".ssh" / "authorized_keys").read_text()
    assert pub in auth and "ssh-ed25519 BBBB cluster" in auth
    cfg = (home / ".ssh" / "config").read_text()
    assert "Host main1 sub1" in cfg and "Port 2200" in cfg
    assert (home / ".ssh" / "id_cluster").read_text() == "CPRIV\n"
    prepare.setup_ssh(user, fallback, cluster, 2200)  # idempotent
    assert (home / ".ssh" / "authorized_keys").read_text().count("BBBB") == 1


def test_service_definitions(tmp_path):
    user = User("me", os.getuid(), os.getgid(), "/home/work", [])
    ctx = services.Context(user, [8888], runtime_path="/usr/bin/python3")
    (tmp_path / "myapp.json").write_text(json.dumps({
        "command": ["{runtime_path}", "-m", "myapp", "--port", "{ports[0]}"],
        "env": {"HOME_DIR": "{home}"}}))
    sdef = services.from_file("myapp", ctx, dirs=[str(tmp_path)])
    assert sdef.command == ["/usr/bin/python3", "-m", "myapp", "--port", "8888"]
    assert sdef.env == {"HOME_DIR": "/home/work"}
    assert services.from_file("other", ctx, dirs=[str(tmp_path)]) is None
    jup = services.SERVICES["jupyter"](ctx)
    assert "--port=8888" in jup.command
    called = []
    services.register("custom", lambda c: called.append(c) or None)
    assert services.resolve("custom", ctx) is None and called == [ctx]
