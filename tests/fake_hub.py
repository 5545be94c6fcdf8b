"""A local stand-in for the Hugging Face Hub, for end-to-end tests of `huggingface_hub` and `transformers`.

It implements the routes that `whoami`, `create_repo`, `create_branch`, `create_commit` (regular and
LFS uploads, with `HF_HUB_DISABLE_XET=1` on the client), `repo_info`, `list_repo_tree`,
`add_space_variable`, `snapshot_download`, `hf_hub_download` and `from_pretrained(repo_id)` call, with
the Hub's permission model: a token's user may write to its own namespace and to organizations where
its role is write or admin. Point a client at it with `HF_ENDPOINT=hub.url`.

    with FakeHub(tokens={"hf_alice": "alice"}, orgs={"alice": {"team": "write"}}) as hub:
        ...

It serves on 127.0.0.1 only, on a free port, from a daemon thread.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REPO_TYPES = {"models": "model", "spaces": "space", "datasets": "dataset"}
URL_PREFIXES = {"model": "", "space": "spaces/", "dataset": "datasets/"}
# What the Hub writes into a new repo: which paths are stored with LFS.
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.bin", "*.onnx", "*.pt", "*.safetensors", "*.tflite", "*.zip", "*.npy", "*.h5")
)
LFS_MIN_SIZE = 10 * 1024 * 1024
WRITE_ROLES = ("write", "admin")
REPO = r"(?P<repo_id>[\w.-]+/[\w.-]+)"
API_REPO = r"/api/(?P<kind>models|spaces|datasets)/" + REPO
URL_REPO = r"/(?P<prefix>spaces/|datasets/)?" + REPO


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def is_lfs_path(path: str, size: int, sample: bytes) -> bool:
    patterns = [line.split()[0] for line in GITATTRIBUTES.splitlines()]
    return any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in patterns) or size >= LFS_MIN_SIZE or b"\0" in sample


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    sdk: str | None = None
    # commit oid -> {path: content}; refs: branch -> commit oid
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/")[0]

    def commit(self, parent: str | None, files: dict[str, bytes], message: str, branch: str) -> str:
        digest = hashlib.sha1(f"{self.repo_id}\n{parent}\n{message}\n".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_oid(files[path])}\n".encode())
        oid = digest.hexdigest()
        self.trees[oid] = files
        self.refs[branch] = oid
        return oid

    def resolve(self, revision: str) -> str:
        revision = unquote(revision)
        if revision in self.refs:
            return self.refs[revision]
        if revision in self.trees:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class FakeHub:
    """The Hub's state (repos, LFS objects) plus the HTTP server that serves it.

    Args:
        tokens: token -> user name.
        orgs: user name -> {organization: role}.
    """

    def __init__(self, tokens: dict[str, str], orgs: dict[str, dict[str, str]] | None = None):
        self.tokens = tokens
        self.orgs = orgs or {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._drops: list[tuple[str, re.Pattern]] = []
        self.lock = threading.Lock()  # one request changes the state at a time
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(HubRequestHandler):
            fake_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_repo(self, repo_id: str, repo_type: str = "model", files: dict[str, bytes] | None = None, **kwargs) -> Repo:
        """Creates a repo directly, e.g. one owned by someone else."""
        repo = Repo(repo_type, repo_id, **kwargs)
        repo.commit(None, {".gitattributes": GITATTRIBUTES.encode(), **(files or {})}, "initial commit", "main")
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def drop_connection(self, method: str, path_pattern: str) -> None:
        """Requests matching `method` and the `path_pattern` regex get their connection closed, no response."""
        self._drops.append((method, re.compile(path_pattern)))

    def should_drop(self, method: str, path: str) -> bool:
        return any(method == m and pattern.search(path) for m, pattern in self._drops)

    # -- permissions -------------------------------------------------------------------------------

    def user_of(self, authorization: str | None) -> str | None:
        token = authorization.removeprefix("Bearer ").strip() if authorization else None
        if token and token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.tokens.get(token) if token else None

    def can_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (namespace == user or self.orgs.get(user, {}).get(namespace) in WRITE_ROLES)

    def can_read(self, user: str | None, repo: Repo) -> bool:
        members = {user, *self.orgs.get(user, {})} if user else set()
        return not repo.private or repo.namespace in members

    def readable_repo(self, user: str | None, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or not self.can_read(user, repo):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def writable_repo(self, user: str | None, repo_type: str, repo_id: str) -> Repo:
        repo = self.readable_repo(user, repo_type, repo_id)
        if not self.can_write(user, repo.namespace):
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo


class HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake_hub: FakeHub

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_HEAD(self) -> None:
        self.dispatch("HEAD")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        hub = self.fake_hub
        if hub.should_drop(method, url.path):
            hub.requests.append((method, url.path, 0))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, headers, payload = 404, {}, json.dumps({"error": f"no route {method} {url.path}"}).encode()
        try:
            for route_method, pattern, handler in ROUTES:
                match = re.fullmatch(pattern, url.path)
                if match and method in route_method.split("|"):
                    with hub.lock:
                        user = hub.user_of(self.headers.get("Authorization"))
                        status, headers, payload = handler(hub, user, match.groupdict(), parse_qs(url.query), body)
                    break
        except HubError as error:
            status, payload = error.status, json.dumps({"error": error.message}).encode()
            headers = {"X-Error-Message": error.message, **({"X-Error-Code": error.code} if error.code else {})}
        hub.requests.append((method, url.path, status))
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)


def reply(data, status: int = 200, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    return status, headers or {}, json.dumps(data).encode()


def repo_type_of(groups: dict) -> str:
    if "kind" in groups:
        return REPO_TYPES[groups["kind"]]
    return {"spaces/": "space", "datasets/": "dataset"}.get(groups.get("prefix") or "", "model")


def whoami(hub: FakeHub, user, groups, query, body):
    if user is None:
        raise HubError(401, "Invalid username or password.")
    orgs = [{"name": name, "roleInOrg": role} for name, role in hub.orgs.get(user, {}).items()]
    return reply({"type": "user", "name": user, "orgs": orgs})


def create_repo(hub: FakeHub, user, groups, query, body):
    request = json.loads(body)
    repo_type = request.get("type") or "model"
    namespace = request.get("organization") or user
    repo_id = f"{namespace}/{request['name']}"
    if user is None:
        raise HubError(401, "Invalid username or password.")
    if (repo_type, repo_id) in hub.repos:
        raise HubError(409, f"You already created this {repo_type} repo")
    if not hub.can_write(user, namespace):
        raise HubError(403, f"You don't have the rights to create a {repo_type} under the namespace {namespace!r}")
    if repo_type == "space" and not request.get("sdk"):
        raise HubError(400, "A Space needs an sdk")
    hub.add_repo(repo_id, repo_type, private=request.get("visibility") == "private", sdk=request.get("sdk"))
    return reply({"url": f"{hub.url}/{URL_PREFIXES[repo_type]}{repo_id}", "name": repo_id})


def create_branch(hub: FakeHub, user, groups, query, body):
    repo = hub.writable_repo(user, repo_type_of(groups), groups["repo_id"])
    branch = unquote(groups["branch"])
    if branch in repo.refs:
        raise HubError(409, f"Reference already exists: {branch}")
    start = json.loads(body).get("startingPoint") if body else None
    repo.refs[branch] = repo.resolve(start or "main")
    return reply({})


def validate_yaml(hub: FakeHub, user, groups, query, body):
    content = json.loads(body)["content"]
    match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
    metadata = yaml.safe_load(match.group(1)) if match else None
    if metadata is not None and not isinstance(metadata, dict):
        return reply({"errors": [{"message": "metadata must be a mapping"}]}, 400)
    if json.loads(body).get("repoType") == "space" and not (metadata or {}).get("sdk"):
        return reply({"errors": [{"message": '"sdk" is required for a Space'}]}, 400)
    return reply({"errors": [], "warnings": []})


def repo_info(hub: FakeHub, user, groups, query, body):
    repo = hub.readable_repo(user, repo_type_of(groups), groups["repo_id"])
    sha = repo.resolve(groups.get("revision") or "main")
    info = {
        "id": repo.repo_id,
        "author": repo.namespace,
        "sha": sha,
        "private": repo.private,
        "siblings": [{"rfilename": path} for path in sorted(repo.trees[sha])],
    }
    if repo.repo_type == "space":
        info["sdk"] = repo.sdk
    return reply(info)


def preupload(hub: FakeHub, user, groups, query, body):
    repo = hub.writable_repo(user, repo_type_of(groups), groups["repo_id"])
    tree = repo.trees[repo.resolve(groups["revision"])]
    files = []
    for entry in json.loads(body)["files"]:
        lfs = is_lfs_path(entry["path"], entry["size"], base64.b64decode(entry["sample"]))
        existing = tree.get(entry["path"])
        remote_oid = None
        if existing is not None:
            remote_oid = hashlib.sha256(existing).hexdigest() if lfs else git_blob_oid(existing)
        files.append({"path": entry["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                      "oid": remote_oid})  # fmt: skip
    return reply({"files": files})


def lfs_batch(hub: FakeHub, user, groups, query, body):
    hub.writable_repo(user, repo_type_of(groups), groups["repo_id"])
    objects = []
    for obj in json.loads(body)["objects"]:
        entry = {"oid": obj["oid"], "size": obj["size"]}
        if obj["oid"] not in hub.lfs_objects:
            entry["actions"] = {"upload": {"href": f"{hub.url}/lfs-storage/{obj['oid']}"}}
        objects.append(entry)
    return reply({"transfer": "basic", "objects": objects})


def lfs_put(hub: FakeHub, user, groups, query, body):
    if hashlib.sha256(body).hexdigest() != groups["oid"]:
        raise HubError(400, "uploaded content does not match its sha256")
    hub.lfs_objects[groups["oid"]] = body
    return reply({})


def commit(hub: FakeHub, user, groups, query, body):
    repo = hub.writable_repo(user, repo_type_of(groups), groups["repo_id"])
    branch = unquote(groups["revision"])
    parent = repo.resolve(branch)
    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    header = next(line["value"] for line in lines if line["key"] == "header")
    if header.get("parentCommit") and header["parentCommit"] != parent:
        raise HubError(412, f"A commit has happened since. Please refresh and try again. ({branch} is at {parent})")
    files = dict(repo.trees[parent])
    for line in lines:
        value = line["value"]
        if line["key"] == "file":
            files[value["path"]] = base64.b64decode(value["content"])
            repo.lfs_paths.discard(value["path"])
        elif line["key"] == "lfsFile":
            if value["oid"] not in hub.lfs_objects:
                raise HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
            files[value["path"]] = hub.lfs_objects[value["oid"]]
            repo.lfs_paths.add(value["path"])
        elif line["key"] == "deletedFile":
            if files.pop(value["path"], None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
    oid = repo.commit(parent, files, header["summary"], branch)
    prefix = URL_PREFIXES[repo.repo_type]
    return reply({"commitUrl": f"{hub.url}/{prefix}{repo.repo_id}/commit/{oid}", "commitOid": oid,
                  "pullRequestUrl": None})  # fmt: skip


def tree(hub: FakeHub, user, groups, query, body):
    repo = hub.readable_repo(user, repo_type_of(groups), groups["repo_id"])
    files = repo.trees[repo.resolve(groups["revision"])]
    folder = unquote(groups.get("path") or "").strip("/")
    recursive = query.get("recursive", ["false"])[0].lower() == "true"
    entries, folders = [], set()
    for path in sorted(files):
        if folder and not path.startswith(folder + "/"):
            continue
        relative = path[len(folder) + 1 :] if folder else path
        if "/" in relative and not recursive:
            folders.add(f"{folder}/{relative.split('/')[0]}".strip("/"))
            continue
        entries.append(tree_entry(repo, path, files[path]))
    entries += [{"type": "directory", "path": path, "oid": "0" * 40, "size": 0} for path in sorted(folders)]
    return reply(entries)


def tree_entry(repo: Repo, path: str, content: bytes) -> dict:
    entry = {"type": "file", "path": path, "size": len(content), "oid": git_blob_oid(content)}
    if path in repo.lfs_paths:
        entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
    return entry


def resolve_file(hub: FakeHub, user, groups, query, body):
    repo = hub.readable_repo(user, repo_type_of(groups), groups["repo_id"])
    sha = repo.resolve(groups["revision"])
    path = unquote(groups["path"])
    if path not in repo.trees[sha]:
        raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
    content = repo.trees[sha][path]
    etag = hashlib.sha256(content).hexdigest() if path in repo.lfs_paths else git_blob_oid(content)
    return 200, {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}, content


def space_variable(hub: FakeHub, user, groups, query, body):
    repo = hub.writable_repo(user, "space", groups["repo_id"])
    request = json.loads(body)
    repo.variables[request["key"]] = request["value"]
    return reply({key: {"value": value} for key, value in repo.variables.items()})


ROUTES = [
    ("GET", r"/api/whoami-v2", whoami),
    ("POST", r"/api/repos/create", create_repo),
    ("POST", r"/api/validate-yaml", validate_yaml),
    ("POST", API_REPO + r"/branch/(?P<branch>[^/]+)", create_branch),
    ("POST", API_REPO + r"/preupload/(?P<revision>[^/]+)", preupload),
    ("POST", API_REPO + r"/commit/(?P<revision>[^/]+)", commit),
    ("GET", API_REPO + r"/tree/(?P<revision>[^/]+)(?P<path>/.*)?", tree),
    ("POST", r"/api/spaces/" + REPO + r"/variables", space_variable),
    ("GET", API_REPO + r"(?:/revision/(?P<revision>[^/]+))?", repo_info),
    ("POST", URL_REPO + r"\.git/info/lfs/objects/batch", lfs_batch),
    ("PUT", r"/lfs-storage/(?P<oid>[0-9a-f]{64})", lfs_put),
    ("GET|HEAD", URL_REPO + r"/resolve/(?P<revision>[^/]+)/(?P<path>.+)", resolve_file),
]
