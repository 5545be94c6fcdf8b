"""Push the built model repo and the gradio Space to the Hugging Face Hub, then verify what landed there.

    python scripts/build_hub_repo.py --model release/kr-lpr --out build/hub ...
    HF_TOKEN=hf_... python scripts/push_to_hub.py --model-dir build/hub --repo-id org/kr-lpr --space-id org/kr-lpr-demo

Each repo gets exactly one commit, made with `create_commit(parent_commit=<head before the push>)`:
the Hub ends up with either its previous revision or the complete new one, never a mix (with hf_xet,
`upload_folder` splits big folders into several commits). Remote files that the local folder no longer
has are deleted in the same commit, so the repo mirrors the folder.

Verification downloads the pushed revision into a temporary cache, compares every file's sha256 with
the local folder, loads the model by repo id with `AutoModel.from_pretrained(..., trust_remote_code=True)`
and checks that its logits equal the local folder's. The Space gets the variables `KR_LPR_MODEL` and
`KR_LPR_REVISION` (the model branch), so it serves the model that was just pushed.
The exit status is 0 only when every push and check passed.

The Hub is `HF_ENDPOINT` (default https://huggingface.co); the token comes from `HF_TOKEN` or `hf auth login`.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

import httpx2  # huggingface_hub 2's HTTP client: its HTTPError covers transport failures and HfHubHTTPError
import numpy as np
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, SpaceCard, get_token, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

MODEL_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "labels.names", "README.md")
SPACE_FILES = ("app.py", "requirements.txt", "README.md")
# Written by the Hub when it creates a repo; a push neither deletes nor compares it.
HUB_OWNED_FILES = {".gitattributes"}
WRITE_ROLES = ("write", "admin")
NETWORK_ERRORS = (httpx2.HTTPError, OSError)


class PushError(Exception):
    """A push or verification failure, worded for the person running the script."""


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, keyed by its POSIX path relative to `folder`."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def check_folder(folder: Path, required: tuple[str, ...], what: str) -> None:
    if not folder.is_dir():
        raise PushError(f"{what} folder not found: {folder}")
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise PushError(f"{what} folder {folder} lacks {', '.join(missing)}")


def stage_space(space_dir: Path, model_repo_id: str, out_dir: Path) -> Path:
    """Copies the Space's files (no caches) and links its README to the model repo."""
    check_folder(space_dir, SPACE_FILES, "Space")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "requirements.txt"):
        shutil.copyfile(space_dir / name, out_dir / name)
    examples = sorted((space_dir / "examples").glob("*.png"))
    if examples:
        (out_dir / "examples").mkdir(exist_ok=True)
        for example in examples:
            shutil.copyfile(example, out_dir / "examples" / example.name)
    card = SpaceCard.load(space_dir / "README.md")
    card.data.models = [model_repo_id]
    card.save(out_dir / "README.md")
    return out_dir


def writable_namespaces(account: dict) -> list[str]:
    orgs = [org["name"] for org in account.get("orgs", []) if org.get("roleInOrg") in WRITE_ROLES]
    return [account["name"], *orgs]


def authenticate(api: HfApi) -> dict:
    if api.token is None:
        raise PushError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    try:
        return api.whoami()
    except HfHubHTTPError as error:
        raise PushError(f"the Hub at {api.endpoint} rejected the token: {error}") from error
    except NETWORK_ERRORS as error:
        raise PushError(f"cannot reach the Hub at {api.endpoint}: {error}") from error


def ensure_repo(api: HfApi, repo_id: str, repo_type: str, private: bool, account: dict) -> None:
    """Creates the repo, or accepts an existing one that the token may write to."""
    namespaces = writable_namespaces(account)
    namespace = repo_id.split("/")[0]
    space_sdk = "gradio" if repo_type == "space" else None
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, space_sdk=space_sdk)
    except HfHubHTTPError as error:
        status = error.response.status_code
        if status == 409 and namespace in namespaces:
            return  # our repo already exists: this push is its next revision
        if status == 409:
            raise PushError(
                f"name clash: the {repo_type} repo {repo_id} already exists and belongs to {namespace!r}; "
                f"{account['name']!r} can write to {', '.join(namespaces)}. Choose another id."
            ) from error
        if status in (401, 403):
            raise PushError(
                f"cannot create the {repo_type} repo {repo_id}: {error.server_message or error}. "
                f"{account['name']!r} can write to {', '.join(namespaces)}."
            ) from error
        raise


def head_of(api: HfApi, repo_id: str, repo_type: str, branch: str) -> str | None:
    """The commit `branch` points to, or None when the branch does not exist."""
    try:
        return api.repo_info(repo_id, repo_type=repo_type, revision=branch).sha
    except RevisionNotFoundError:
        return None


def commit_folder(api: HfApi, folder: Path, repo_id: str, repo_type: str, branch: str, message: str) -> str:
    """One commit that makes `branch` mirror `folder`; returns its oid."""
    head = head_of(api, repo_id, repo_type, branch)
    if head is None:
        api.create_branch(repo_id, repo_type=repo_type, branch=branch)
        head = head_of(api, repo_id, repo_type, branch)
    local = file_hashes(folder)
    remote = set(api.list_repo_files(repo_id, repo_type=repo_type, revision=head))
    operations = [CommitOperationDelete(path) for path in sorted(remote - set(local) - HUB_OWNED_FILES)]
    operations += [CommitOperationAdd(path, folder / path) for path in local]
    try:
        info = api.create_commit(
            repo_id, operations, commit_message=message, repo_type=repo_type, revision=branch, parent_commit=head
        )
    except NETWORK_ERRORS as error:
        state = remote_state(api, repo_id, repo_type, branch, head)
        reason = str(error).rstrip(".")
        raise PushError(f"pushing the {repo_type} repo {repo_id} failed: {reason}. {state}") from error
    return info.oid


def remote_state(api: HfApi, repo_id: str, repo_type: str, branch: str, head_before: str) -> str:
    try:
        head_now = head_of(api, repo_id, repo_type, branch)
    except NETWORK_ERRORS as error:
        return f"Could not check the Hub afterwards ({error}): inspect {repo_id}@{branch} before using it."
    if head_now == head_before:
        return f"Nothing was committed: {branch} is still at {head_before[:12]}."
    return f"{branch} moved to {head_now[:12]} but that revision was not verified: push again."


def verify_files(api: HfApi, folder: Path, repo_id: str, repo_type: str, commit: str, cache_dir: Path) -> None:
    """Downloads `commit` and checks every file's sha256 against the local folder."""
    downloaded = snapshot_download(
        repo_id, repo_type=repo_type, revision=commit, cache_dir=cache_dir, token=api.token, endpoint=api.endpoint
    )
    remote = {path: digest for path, digest in file_hashes(Path(downloaded)).items() if path not in HUB_OWNED_FILES}
    local = file_hashes(folder)
    differing = sorted(path for path in local.keys() | remote.keys() if local.get(path) != remote.get(path))
    if differing:
        raise PushError(f"{repo_id}@{commit[:12]} does not match {folder}: {', '.join(differing)}")


def verify_model(api: HfApi, folder: Path, repo_id: str, commit: str, cache_dir: Path) -> None:
    """Loads the pushed model by repo id (remote code) and compares its logits with the local folder's."""
    # Imported here: torch and transformers take seconds to import and are only needed once the push succeeded.
    import torch
    from transformers import AutoImageProcessor, AutoModel

    hub = {"revision": commit, "cache_dir": cache_dir, "token": api.token, "trust_remote_code": True}
    remote_model = AutoModel.from_pretrained(repo_id, **hub).eval()
    processor = AutoImageProcessor.from_pretrained(repo_id, **hub)
    local_model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    probe = np.linspace(0, 255, 48 * 160 * 3).reshape(48, 160, 3).astype(np.uint8)
    inputs = processor(images=probe, return_tensors="pt")
    with torch.no_grad():
        if not torch.equal(remote_model(**inputs).logits, local_model(**inputs).logits):
            raise PushError(f"{repo_id}@{commit[:12]} loads, but its outputs differ from {folder}")


def push(
    model_dir: Path,
    repo_id: str,
    space_dir: Path | None = None,
    space_id: str | None = None,
    *,
    private: bool = False,
    revision: str = "main",
    commit_message: str = "Upload kr-lpr",
    token: str | None = None,
) -> dict[str, str]:
    """Pushes and verifies the model repo, then the Space; returns `{"model": oid, "space": oid}`."""
    check_folder(model_dir, MODEL_FILES, "model")
    api = HfApi(token=token or get_token())
    account = authenticate(api)
    commits = {}
    with tempfile.TemporaryDirectory(prefix="kr-lpr-push-") as tmp:
        cache = Path(tmp) / "cache"
        try:
            ensure_repo(api, repo_id, "model", private, account)
            commits["model"] = commit_folder(api, model_dir, repo_id, "model", revision, commit_message)
            print(f"pushed {repo_id}@{commits['model'][:12]}; verifying")
            verify_files(api, model_dir, repo_id, "model", commits["model"], cache)
            verify_model(api, model_dir, repo_id, commits["model"], cache)
            print(f"verified {repo_id}@{commits['model'][:12]}: files match and the model loads by repo id")
        except NETWORK_ERRORS as error:
            raise PushError(f"model repo {repo_id}: {error}") from error
        if space_id is None:
            return commits
        try:
            staged = stage_space(space_dir, repo_id, Path(tmp) / "space")
            ensure_repo(api, space_id, "space", private, account)
            commits["space"] = commit_folder(api, staged, space_id, "space", "main", commit_message)
            api.add_space_variable(space_id, "KR_LPR_MODEL", repo_id)
            api.add_space_variable(space_id, "KR_LPR_REVISION", revision)
            verify_files(api, staged, space_id, "space", commits["space"], cache)
            print(f"pushed and verified the Space {space_id}@{commits['space'][:12]}")
        except (PushError, *NETWORK_ERRORS) as error:
            raise PushError(
                f"the model {repo_id}@{commits['model'][:12]} was pushed and verified, "
                f"but the Space {space_id} was not: {error}"
            ) from error
    return commits


def describe_plan(model_dir: Path, repo_id: str, space_dir: Path | None, space_id: str | None, private: bool) -> str:
    check_folder(model_dir, MODEL_FILES, "model")
    lines = [f"model repo {repo_id} ({'private' if private else 'public'}) <- {model_dir}"]
    lines += [f"  {path}  {(model_dir / path).stat().st_size:,} bytes" for path in file_hashes(model_dir)]
    if space_id is not None:
        with tempfile.TemporaryDirectory() as tmp:
            staged = stage_space(space_dir, repo_id, Path(tmp))
            lines.append(f"Space {space_id} (gradio, KR_LPR_MODEL={repo_id}) <- {space_dir}")
            lines += [f"  {path}  {(staged / path).stat().st_size:,} bytes" for path in file_hashes(staged)]
    lines.append(f"token: {'found' if get_token() else 'MISSING (set HF_TOKEN or run `hf auth login`)'}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="push_to_hub.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("build/hub"), help="built by build_hub_repo.py")
    parser.add_argument("--repo-id", required=True, help="model repo, e.g. org/kr-lpr")
    parser.add_argument("--space-dir", type=Path, default=Path("space"))
    parser.add_argument("--space-id", help="Space repo, e.g. org/kr-lpr-demo (no Space push without it)")
    parser.add_argument("--private", action="store_true", help="create new repos as private")
    parser.add_argument("--revision", default="main", help="model repo branch to push to (created if missing)")
    parser.add_argument("--commit-message", default="Upload kr-lpr")
    parser.add_argument("--dry-run", action="store_true", help="print what would be pushed; no network")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.dry_run:
            print(describe_plan(args.model_dir, args.repo_id, args.space_dir, args.space_id, args.private))
            return 0
        push(
            args.model_dir,
            args.repo_id,
            args.space_dir,
            args.space_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
        )
    except PushError as error:
        print(f"push_to_hub: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
