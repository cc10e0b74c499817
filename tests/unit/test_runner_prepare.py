"""Preparation steps of the runner on a scratch filesystem."""

from __future__ import annotations

import json
import os

from workbay.runner import prepare, services, users
from workbay.runner.prepare import ContainerUser


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
    user = ContainerUser("me", os.getuid(), os.getgid(), str(home), [])
    assert prepare.dotfile_path(str(home), ".bashrc") == str(home / ".bashrc")
    assert prepare.dotfile_path(str(home), "../etc/x") is None
    assert prepare.dotfile_path(str(home), "/etc/sudoers.d/x") is None
    logged = []
    n = prepare.apply_dotfiles(user, [{"path": ".config/app/rc", "data": "x=1", "perm": "600"},
                                      {"path": "/etc/passwd", "data": "evil"}], logged.append)
    assert n == 1 and len(logged) == 1
    f = home / ".config" / "app" / "rc"
    assert f.read_text() == "x=1" and oct(f.stat().st_mode & 0o777) == "0o600"


def _ssh_paths(tmp_path):
    """A home, the session's SSH directory and the system ssh config, on a scratch filesystem."""
    home = tmp_path / "home"
    home.mkdir()
    etc_ssh = tmp_path / "etc-ssh"
    (etc_ssh / "ssh_config.d").mkdir(parents=True)
    return home, tmp_path / "session-ssh", etc_ssh


def _tree(path):
    """Every file under ``path`` with its bytes and mode (what "untouched" means)."""
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None, p.stat().st_mode)
            for p in sorted(path.rglob("*"))}


def test_ssh_setup_with_agent_key_and_cluster(tmp_path):
    home, session_dir, etc_ssh = _ssh_paths(tmp_path)
    debian_config = f"Include {etc_ssh}/ssh_config.d/*.conf\nHost *\n"
    (etc_ssh / "ssh_config").write_text(debian_config)
    client_config = etc_ssh / "ssh_config.d" / "workbay-cluster.conf"
    user = ContainerUser("me", os.getuid(), os.getgid(), str(home), [])
    fallback = {"private_key": "PRIVATE", "public_key": "ssh-ed25519 AAAA session"}
    cluster = {"private_key": "CPRIV", "public_key": "ssh-ed25519 BBBB cluster",
               "hosts": ["main1", "sub1"]}
    kw = dict(session_dir=str(session_dir), client_config=str(client_config),
              system_config=str(etc_ssh / "ssh_config"))
    pub = prepare.setup_ssh(user, fallback, cluster, 2200, **kw)
    assert pub  # ssh-keygen's key when it is installed, else the agent's
    assert (home / "id_container").exists()
    auth = (session_dir / "authorized_keys").read_text()
    assert auth.splitlines() == [pub, "ssh-ed25519 BBBB cluster"]
    cfg = client_config.read_text()
    assert "Host main1 sub1" in cfg and "Port 2200" in cfg
    assert f"IdentityFile {session_dir / 'id_cluster'}" in cfg
    assert (session_dir / "id_cluster").read_text() == "CPRIV\n"
    assert oct((session_dir / "id_cluster").stat().st_mode & 0o777) == "0o600"
    # the image's ssh_config already reads ssh_config.d: left as it was
    assert (etc_ssh / "ssh_config").read_text() == debian_config
    # nothing of the session in ~/.ssh (an empty place for the user's own keys)
    assert list((home / ".ssh").iterdir()) == []
    prepare.setup_ssh(user, fallback, cluster, 2200, **kw)  # idempotent
    assert (session_dir / "authorized_keys").read_text().count("BBBB") == 1


def test_ssh_setup_leaves_the_users_ssh_folder_untouched(tmp_path):
    """~/.ssh as the persistent `.ssh` automount folder: byte-identical after any number of
    sessions, and an earlier session's key is not authorized for the next one."""
    home, session_dir, etc_ssh = _ssh_paths(tmp_path)
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o755)
    (ssh / "authorized_keys").write_text("ssh-ed25519 MINE me@laptop\n")
    (ssh / "config").write_text("Host github.com\n  ContainerUser git\n")
    (ssh / "id_ed25519").write_text("MY PRIVATE KEY\n")
    before = _tree(ssh)
    user = ContainerUser("me", os.getuid(), os.getgid(), str(home), [])
    kw = dict(session_dir=str(session_dir),
              client_config=str(etc_ssh / "ssh_config.d" / "workbay-cluster.conf"),
              system_config=str(etc_ssh / "ssh_config"))
    first = prepare.setup_ssh(user, {"private_key": "P1", "public_key": "ssh-ed25519 OLD s1"},
                              {"private_key": "C1", "public_key": "ssh-ed25519 CL1 c",
                               "hosts": ["main1", "sub1"]}, 2200, **kw)
    second = prepare.setup_ssh(user, {"private_key": "P2", "public_key": "ssh-ed25519 NEW s2"},
                               {"private_key": "C2", "public_key": "ssh-ed25519 CL2 c",
                                "hosts": ["main1", "sub1"]}, 2200, **kw)
    assert _tree(ssh) == before
    assert first != second
    auth = (session_dir / "authorized_keys").read_text()
    assert first not in auth and "CL1" not in auth
    assert second in auth and "CL2" in auth
    # an image whose ssh_config does not read ssh_config.d gets an Include of the cluster config
    assert (etc_ssh / "ssh_config").read_text().startswith(
        f"Include {etc_ssh / 'ssh_config.d' / 'workbay-cluster.conf'}\n")


def test_registered_public_keys_are_authorized_for_the_session_only(tmp_path):
    """ID-13: the keys the owner registered join the session's authorized_keys (not ~/.ssh);
    a value that is not one line is ignored."""
    home, session_dir, etc_ssh = _ssh_paths(tmp_path)
    user = ContainerUser("me", os.getuid(), os.getgid(), str(home), [])
    kw = dict(session_dir=str(session_dir),
              client_config=str(etc_ssh / "ssh_config.d" / "workbay-cluster.conf"),
              system_config=str(etc_ssh / "ssh_config"))
    pub = prepare.setup_ssh(user, {"private_key": "P", "public_key": "ssh-ed25519 S s"}, None, 2200,
                            extra_keys=["ssh-ed25519 REGISTERED me@laptop\n", "two\nlines", ""], **kw)
    assert (session_dir / "authorized_keys").read_text().splitlines() == [pub, "ssh-ed25519 REGISTERED me@laptop"]
    assert list((home / ".ssh").iterdir()) == []
    prepare.setup_ssh(user, {"private_key": "P", "public_key": "ssh-ed25519 S s"}, None, 2200, **kw)
    assert "REGISTERED" not in (session_dir / "authorized_keys").read_text()   # removed, gone


def test_sshd_reads_the_users_and_the_sessions_authorized_keys(tmp_path):
    user = ContainerUser("work", os.getuid(), os.getgid(), str(tmp_path), [])
    command = services.sshd_command("/usr/sbin/sshd", 2200, "/etc/ssh/key", user)
    option = next(a for a in command if a.startswith("AuthorizedKeysFile="))
    files = option.partition("=")[2].split()
    assert files == [".ssh/authorized_keys",
                     os.path.join(prepare.session_ssh_dir(user), "authorized_keys")]


def test_service_definitions(tmp_path):
    user = ContainerUser("me", os.getuid(), os.getgid(), "/home/work", [])
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
