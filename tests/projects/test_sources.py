from __future__ import annotations

from pathlib import Path

import pytest

from flowml.exceptions import InvalidParameter
from flowml.projects.errors import ExecutionError
from flowml.projects.sources import fetch_project, split_uri

from .helpers import commit_all, git, init_repo, write


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git repository with two commits on main, a tag, a branch and a subdirectory project."""
    root = init_repo(tmp_path / "repo")
    write(root, {"sub/MLproject": "name: sub\nentry_points: {main: {command: 'true'}}\n"})
    write(root, {"VERSION": "one\n"})
    first = commit_all(root, "first")
    git(root, "tag", "v1")
    write(root, {"VERSION": "two\n"})
    second = commit_all(root, "second")
    git(root, "checkout", "--quiet", "-b", "feature")
    write(root, {"VERSION": "feature\n"})
    feature = commit_all(root, "feature")
    git(root, "checkout", "--quiet", "main")
    return root, {"first": first, "second": second, "feature": feature}


def test_split_uri() -> None:
    assert split_uri("https://h/r.git#a/b") == ("https://h/r.git", "a/b")
    assert split_uri("'/x/y'") == ("/x/y", "")
    assert split_uri("/x#sub.dir") == ("/x", "sub.dir")
    with pytest.raises(InvalidParameter, match="inside the project"):
        split_uri("/x#../etc")


def test_plain_directory_runs_in_place(tmp_path: Path) -> None:
    write(tmp_path / "p", {"t.py": ""})
    with fetch_project(str(tmp_path / "p")) as source:
        assert source.work_dir == (tmp_path / "p").resolve()
        assert source.git_commit is None and source.git_repo_url is None
        assert source.source_name == str((tmp_path / "p").resolve())
    assert (tmp_path / "p" / "t.py").exists()  # never removed


def test_local_git_repository_in_place(repo: tuple[Path, dict[str, str]]) -> None:
    root, commits = repo
    with fetch_project(f"{root}#sub") as source:
        assert source.work_dir == (root / "sub").resolve()
        assert source.git_commit == commits["second"]
        assert source.git_repo_url == root.resolve().as_uri()  # no origin remote
        assert source.source_name == f"{root.resolve().as_uri()}#sub"
    git(root, "remote", "add", "origin", "https://example.invalid/team/repo.git")
    with fetch_project(str(root / "sub")) as source:
        assert source.git_repo_url == "https://example.invalid/team/repo.git"


@pytest.mark.parametrize(
    ("version", "expected", "commit", "branch"),
    [
        ("<first>", "one", "first", None),  # a commit
        ("v1", "one", "first", None),  # a tag
        ("feature", "feature", "feature", "feature"),  # a branch
    ],
)
def test_local_git_repository_at_a_version(
    repo: tuple[Path, dict[str, str]], version: str, expected: str, commit: str, branch: str | None
) -> None:
    root, commits = repo
    ref = commits["first"] if version == "<first>" else version
    with fetch_project(str(root), version=ref) as source:
        assert (source.work_dir / "VERSION").read_text() == f"{expected}\n"
        assert source.git_commit == commits[commit]
        assert source.git_branch == branch
        assert source.work_dir != root.resolve()
        clone = source.work_dir
    assert not clone.exists()  # the temporary clone is gone after the block
    assert (root / "VERSION").read_text() == "two\n"  # the source repository is untouched


def test_git_url_with_subdirectory_and_version(repo: tuple[Path, dict[str, str]]) -> None:
    root, commits = repo
    url = root.resolve().as_uri()
    with fetch_project(f"{url}#sub", version=commits["first"]) as source:
        assert source.work_dir.name == "sub"
        assert (source.work_dir / "MLproject").is_file()
        assert source.git_commit == commits["first"]
        assert source.git_repo_url == url
        assert source.source_name == f"{url}#sub"
    with fetch_project(url) as source:  # no version: the default branch's head
        assert source.git_commit == commits["second"]
        assert source.work_dir.name == "repo"


def test_subdirectory_of_a_local_repo_keeps_its_offset(repo: tuple[Path, dict[str, str]]) -> None:
    root, commits = repo
    with fetch_project(str(root / "sub"), version=commits["first"]) as source:
        assert source.work_dir.name == "sub"
        assert (source.work_dir / "MLproject").is_file()


def test_errors(tmp_path: Path, repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    write(tmp_path / "plain", {"t.py": ""})
    with pytest.raises(InvalidParameter, match="needs a git project"):
        with fetch_project(str(tmp_path / "plain"), version="main"):
            pass
    with pytest.raises(InvalidParameter, match="no subdirectory 'nope'"):
        with fetch_project(f"{root}#nope"):
            pass
    with pytest.raises(InvalidParameter, match="neither an existing directory nor a git URL"):
        with fetch_project(str(tmp_path / "missing")):
            pass
    with pytest.raises(ExecutionError, match="Cannot check out version 'no-such-ref'"):
        with fetch_project(str(root), version="no-such-ref"):
            pass
    with pytest.raises(ExecutionError, match="git clone"):
        with fetch_project((tmp_path / "not-a-repo.git").as_uri() + "x"):
            pass


# --- nothing the caller gives reaches git as an option or picks a command-running transport ---


@pytest.fixture
def permissive_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user git configuration that allows every transport, ``ext::`` included: flowml's own
    limits must hold whatever the machine's git is configured to accept."""
    config = tmp_path / "gitconfig"
    config.write_text("[protocol]\n\tallow = always\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.mark.parametrize("option", ["--upload-pack=touch {marker}", "-u touch {marker}"])
def test_version_is_never_a_git_option(
    tmp_path: Path, repo: tuple[Path, dict[str, str]], option: str
) -> None:
    root, _ = repo
    marker = tmp_path / "MARKER"
    for uri in (str(root), root.resolve().as_uri() + "x", root.resolve().as_uri()):
        with pytest.raises(InvalidParameter, match="must not start with '-'"):
            with fetch_project(uri, version=option.format(marker=marker)):
                pass
    assert not marker.exists()


def test_version_with_spaces_is_refused(tmp_path: Path, repo: tuple[Path, dict[str, str]]) -> None:
    root, _ = repo
    with pytest.raises(InvalidParameter, match="spaces or control characters"):
        with fetch_project(str(root), version="main\n--upload-pack=x"):
            pass


@pytest.mark.usefixtures("permissive_git")
@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% {marker} x://y",  # git's ext transport runs its "URL"
        "git@ext::sh -c touch% {marker}",
        "fd::3://x",
        "http://example.invalid/repo.git",  # plain http: not an allowed transport
        "ssh://-oProxyCommand=touch%20{marker}/repo.git",
        "ssh://git@-oProxyCommand=x/repo.git",
        "-oProxyCommand=touch@host:repo",
        "--upload-pack=touch {marker}@host:repo",
    ],
)
def test_url_transport_and_options_are_refused(tmp_path: Path, url: str) -> None:
    marker = tmp_path / "MARKER"
    with pytest.raises(InvalidParameter):
        with fetch_project(url.format(marker=marker)):
            pass
    with pytest.raises(InvalidParameter):
        with fetch_project(url.format(marker=marker), version="main"):
            pass
    assert not marker.exists()


@pytest.mark.usefixtures("permissive_git")
def test_git_itself_refuses_ext_for_submodules(tmp_path: Path) -> None:
    # A repository whose .gitmodules points a submodule at an ext:: "URL" (a command): the
    # URL check cannot see it, git's protocol.allow given on every call must stop it.
    marker = tmp_path / "MARKER"
    root = init_repo(tmp_path / "evil")
    write(root, {"MLproject": "name: evil\n"})
    first = commit_all(root, "first")
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{first},lib")  # a gitlink
    write(
        root,
        {".gitmodules": f'[submodule "lib"]\n\tpath = lib\n\turl = ext::sh -c touch% {marker}\n'},
    )
    git(root, "add", ".gitmodules")  # not `add -A`: it would drop the unpopulated gitlink
    git(root, "commit", "--quiet", "-m", "add a submodule")
    with pytest.raises(ExecutionError, match="git submodules failed"):
        with fetch_project(root.resolve().as_uri(), version="main"):
            pass
    assert not marker.exists()


@pytest.mark.parametrize("subdirectory", ["-x", "../repo", "a/../../etc", "sub\nx"])
def test_subdirectory_is_confined(
    tmp_path: Path, repo: tuple[Path, dict[str, str]], subdirectory: str
) -> None:
    root, _ = repo
    with pytest.raises(InvalidParameter):
        with fetch_project(f"{root}#{subdirectory}", version="main"):
            pass


def test_subdirectory_symlink_out_of_the_checkout_is_refused(
    tmp_path: Path, repo: tuple[Path, dict[str, str]]
) -> None:
    root, _ = repo
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    commit_all(root, "a symlink out")
    for version in (None, "main"):
        with pytest.raises(InvalidParameter, match="no subdirectory 'escape'"):
            with fetch_project(f"{root}#escape", version=version):
                pass
