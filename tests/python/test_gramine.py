"""The Gramine manifest templates and scripts of hardware mode (gramine/).

No Gramine can be installed here, so the templates are rendered the way `gramine-manifest`
renders them (Jinja2, with a stand-in for its `gramine` helper object) and read back as
TOML; the properties that make the LAS enclave trustworthy are asserted on the result.
"""

import os
import re
import subprocess
import tomllib
from pathlib import Path

import jinja2

ROOT = Path(__file__).resolve().parents[2]
GRAMINE = ROOT / "gramine"


class Gramine:
    """What gramine-manifest exposes to templates as `gramine`."""

    libos = "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so"

    @staticmethod
    def runtimedir(libc="glibc"):
        return f"/usr/lib/x86_64-linux-gnu/gramine/runtime/{libc}"


def render(name, **variables):
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = env.from_string((GRAMINE / name).read_text()).render(gramine=Gramine, **variables)
    return tomllib.loads(text)


def las_manifest(**over):
    v = dict(las_dir="/las", arch_libdir="/lib/x86_64-linux-gnu", listen="[::]:18766",
             log_level="error", debug="false")
    v.update(over)
    return render("las.manifest.template", **v)


def test_las_manifest_is_a_dcap_production_enclave_that_takes_nothing_from_the_host():
    m = las_manifest()
    assert m["sgx"]["remote_attestation"] == "dcap"
    assert m["sgx"]["debug"] is False
    assert m["libos"]["entrypoint"] == "/las/lasd"
    argv = m["loader"]["argv"]
    # The daemon alone is measured (lasd), never the operator CLI.
    assert argv[0] == "lasd"
    assert argv[argv.index("--mode") + 1] == "hw"
    assert argv[argv.index("--listen") + 1] == "[::]:18766"
    # Arguments and environment are measured, never passed through from the host.
    assert "insecure__use_cmdline_argv" not in m["loader"]
    assert "insecure__use_host_env" not in m["loader"]
    for name, value in m["loader"].get("env", {}).items():
        assert not isinstance(value, dict), f"loader.env.{name} comes from the host"
    # The binary is a trusted (hashed) file; nothing untrusted is readable.
    assert "file:/las/lasd" in m["sgx"]["trusted_files"]
    assert "file:" + Gramine.libos in m["sgx"]["trusted_files"]
    assert "allowed_files" not in m["sgx"]
    mounts = {mnt["path"]: mnt for mnt in m["fs"]["mounts"]}
    assert mounts["/las"]["uri"] == "file:/las"
    assert mounts["/tmp"]["type"] == "tmpfs"
    assert m["sys"]["enable_sigterm_injection"] is True


def test_las_manifest_debug_and_listen_are_build_parameters():
    assert las_manifest(debug="true")["sgx"]["debug"] is True
    assert las_manifest(debug="yes")["sgx"]["debug"] is False
    m = las_manifest(listen="127.0.0.1:18799", las_dir="/opt/las")
    assert "127.0.0.1:18799" in m["loader"]["argv"]
    assert "file:/opt/las/lasd" in m["sgx"]["trusted_files"]


def test_app_test_manifest_runs_the_gated_rust_test_with_its_inputs():
    m = render("app-test.manifest.template", test_dir="/t/app", input_dir="/t/input",
               arch_libdir="/lib/x86_64-linux-gnu", debug="false")
    assert m["sgx"]["remote_attestation"] == "dcap"
    assert m["libos"]["entrypoint"] == "/t/app/sgx_gramine"
    src = (ROOT / "crates/las-platform/tests/sgx_gramine.rs").read_text()
    test_name = m["loader"]["argv"][-1]
    assert f"fn {test_name}()" in src
    assert "--ignored" in m["loader"]["argv"]
    # Every variable the test reads is passed into the enclave.
    read = set(re.findall(r'env\("(LAS_TEST_[A-Z_]+)"\)', src))
    passed = {k for k, v in m["loader"]["env"].items() if v == {"passthrough": True}}
    assert read and read <= passed, read - passed
    assert "file:/t/app/sgx_gramine" in m["sgx"]["trusted_files"]
    assert "file:/t/input/" in m["sgx"]["allowed_files"]


def test_scripts_parse_and_build_says_what_is_missing():
    for script in ("build.sh", "hw-test.sh"):
        subprocess.run(["bash", "-n", str(GRAMINE / script)], check=True)
        assert os.access(GRAMINE / script, os.X_OK), script
    # Without Gramine's tools the build stops before compiling anything, naming the tool.
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    r = subprocess.run([str(GRAMINE / "build.sh")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2, r.stderr
    assert "gramine-manifest not found" in r.stderr
    r = subprocess.run([str(GRAMINE / "hw-test.sh")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "PCCS_URL" in r.stderr
