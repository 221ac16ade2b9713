#!/usr/bin/env bats
# kata-config: the configuration.toml keys of every profile for Kata 1.x, 2.x and 3.x on the
# seeds' hosts (golden files, each parsed by python's tomllib), the topology the host's BARs
# decide, drop-ins, and in-place patches of a realistic configuration.toml that keep every
# other byte. KGB_UPDATE_GOLDEN=1 rewrites the golden files instead of comparing.

setup() {
  load ../helpers
  WORKDIR=$BATS_TEST_TMPDIR/work
  GOLDEN=$FIXTURES/golden/kata-config
  OUT=$BATS_TEST_TMPDIR/out.toml
  # the seeds' NVIDIA setup: hot-plugged into root ports, one per GPU (the shipped profile
  # cold-plugs into 8, as Kata's NVIDIA template does)
  NV_HOT=$BATS_TEST_TMPDIR/nvidia-hot.cfg
  printf '@include "nvidia-gpu.cfg"\noverride = {\n  name = "nvidia-gpu";\n  kata = { hot_plug_vfio = "root-port"; cold_plug_vfio = "no-port"; pcie_root_port = 1; };\n};\n' >"$NV_HOT"
}

# golden NAME FILE: FILE must equal $GOLDEN/NAME
golden() {
  if [ -n "${KGB_UPDATE_GOLDEN:-}" ]; then
    mkdir -p "$GOLDEN"
    cp "$2" "$GOLDEN/$1"
  fi
  diff -u "$GOLDEN/$1" "$2"
}

# toml FILE EXPR: parses FILE with tomllib, prints EXPR over it (t)
toml() {
  python3 -c "import sys, tomllib; t = tomllib.load(open(sys.argv[1], 'rb')); print($2)" "$1"
}

# keys_known LIST: LIST has lines "FILE RELEASE RUNTIME"; every FILE parses as TOML and each
# key in it is one that release's runtime reads, by docs/kata-keys.tsv (the table read off
# Kata's config structs at every release tag). One python for all: it starts slowly.
keys_known() {
  python3 - "$1" "$KGB_SRCDIR/docs/kata-keys.tsv" <<'PY'
import sys, tomllib
v = lambda s: tuple(int(x) for x in s.split("."))
rows = []
for line in open(sys.argv[2]):
    if line.startswith("#") or line.startswith("runtime\t"):
        continue
    rows.append(line.rstrip("\n").split("\t"))
for entry in open(sys.argv[1]):
    path, release, runtime = entry.split()
    t = tomllib.load(open(path, "rb"))
    known = {(table, key) for rt, table, key, first, last in rows
             if rt == runtime and v(first) <= v(release) and (last == "-" or v(release) <= v(last))}
    if "kernel" not in t.get("hypervisor", {}).get("qemu", {}):
        sys.exit(f"{path}: no hypervisor.qemu.kernel")
    for table, node in (("hypervisor.qemu", t.get("hypervisor", {}).get("qemu", {})),
                        ("agent.kata", t.get("agent", {}).get("kata", {})),
                        ("runtime", t.get("runtime", {}))):
        for k in node:
            if (table, k) not in known:
                sys.exit(f"{path}: {table}.{k} is not read by Kata {release} ({runtime})")
    extra = set(t) - {"hypervisor", "agent", "runtime"}
    if extra:
        sys.exit(f"{path}: unexpected tables {extra}")
PY
}

host_for() {
  case $1 in
  nvidia-gpu) echo "$FIXTURES/host-nvidia-dc/sys" ;;
  nvidia-vgpu*) echo "$FIXTURES/host-nvidia-sriov/sys" ;;
  intel-*) echo "$FIXTURES/host-intel-gvt/sys" ;;
  *) echo "$FIXTURES/host-no-iommu/sys" ;;
  esac
}

# the release lines the issue names, Go runtime, and runtime-rs's 3.x and 4.x
LINES="1.3 1.11 2.2 2.5 3.0 3.1 3.2 3.6 3.x 4.x rs-3.x rs-4.x"

# line_args LINE: the options that select it
line_args() {
  case $1 in
  rs-*) echo "--runtime rs --kata-version ${1#rs-}" ;;
  *) echo "--kata-version $1" ;;
  esac
}

@test "every profile x Kata release line x -o, --drop-in, --patch: golden, valid TOML, only the release's keys" {
  for p in intel-gvt-d intel-gvt-g nvidia-gpu nvidia-vgpu nvidia-vgpu-mig virgl; do
    for l in $LINES; do
      # shellcheck disable=SC2046
      set -- $(line_args "$l")
      base=$FIXTURES/kata/configuration-qemu-3.toml
      case $l in 1.* | 2.*) base=$FIXTURES/kata/configuration-qemu-1.toml ;; esac
      cfg=$BATS_TEST_TMPDIR/configuration.toml
      cp "$base" "$cfg"
      if ! kgb kata-config -p "$p" "$@" --sysfs "$(host_for "$p")" >"$OUT" 2>"$BATS_TEST_TMPDIR/err"; then
        # what the release cannot express is an error that says so, the same for every way out
        sed "s|$KGB_SRCDIR/||g" "$BATS_TEST_TMPDIR/err" >"$BATS_TEST_TMPDIR/err.rel"
        golden "$p-$l.err" "$BATS_TEST_TMPDIR/err.rel"
        run kgb kata-config -p "$p" "$@" --sysfs "$(host_for "$p")" --patch "$cfg"
        assert_failure 1
        cmp "$cfg" "$base"
        continue
      fi
      golden "$p-$l.toml" "$OUT"
      rel=$(sed -n 's/^# Kata Containers \([0-9.]*\) (.*/\1/p' "$OUT")
      rt=go
      [[ $l == rs-* ]] && rt=rs
      cp "$OUT" "$BATS_TEST_TMPDIR/$p-$l.toml"
      echo "$BATS_TEST_TMPDIR/$p-$l.toml $rel $rt" >>"$BATS_TEST_TMPDIR/check.list"
      # every key is preceded by a comment saying why
      run awk '/^[a-z_]+ = / && prev !~ /^# / { print "no reason for: " $0 } { prev = $0 }' "$OUT"
      assert_output ""
      # the drop-in is the same text, for releases that read config.d; refused before 2.5
      rm -rf "$BATS_TEST_TMPDIR/config.d"
      if [[ $l == 1.* || $l == 2.2 ]]; then
        run kgb kata-config -p "$p" "$@" --sysfs "$(host_for "$p")" --drop-in "$BATS_TEST_TMPDIR/config.d"
        assert_failure 1
        assert_output --partial "reads no config.d drop-ins (the Go runtime reads them from 2.5.0 on): edit its configuration.toml with --patch FILE instead"
        [ ! -e "$BATS_TEST_TMPDIR/config.d" ]
      else
        kgb kata-config -p "$p" "$@" --sysfs "$(host_for "$p")" --drop-in "$BATS_TEST_TMPDIR/config.d" >/dev/null
        cmp "$OUT" "$BATS_TEST_TMPDIR/config.d/50-kata-gpu-$p.toml"
      fi
      # the patched base: golden, parses, holds only keys the release reads where it changed
      kgb kata-config -p "$p" "$@" --sysfs "$(host_for "$p")" --patch "$cfg" >/dev/null
      golden "patch-$p-$l.toml" "$cfg"
      cp "$cfg" "$BATS_TEST_TMPDIR/patched-$p-$l.toml"
    done
  done
  keys_known "$BATS_TEST_TMPDIR/check.list"
  # the patched files parse and hold the settings (their other keys are the base's own)
  python3 - "$BATS_TEST_TMPDIR"/patched-*.toml <<'PY'
import sys, tomllib
for f in sys.argv[1:]:
    t = tomllib.load(open(f, "rb"))
    assert t["hypervisor"]["qemu"]["kernel"].endswith(".container"), f
PY
}

@test "a 32 GiB 64-bit BAR means q35 with a PCIe root port, and says so" {
  kgb kata-config -p "$NV_HOT" --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["machine_type"], t["hypervisor"]["qemu"]["hot_plug_vfio"], t["hypervisor"]["qemu"]["pcie_root_port"]'
  assert_output "q35 root-port 1"
  run grep -B1 '^hot_plug_vfio' "$OUT"
  assert_output --partial "# 0000:d0:00.0 has a 32 GiB 64-bit BAR: a PCIe root port has room for it"
  # Kata 1.x and 2.x: on the root bus, into root ports (Kata 1.11 and later)
  kgb kata-config -p "$NV_HOT" --kata-version 2.x --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["hotplug_vfio_on_root_bus"], t["hypervisor"]["qemu"]["pcie_root_port"]'
  assert_output "True 1"
}

@test "large BARs are refused before Kata 1.11, accepted from 1.11 on" {
  run kgb kata-config -p "$NV_HOT" --kata-version 1.10 --sysfs "$FIXTURES/host-nvidia-dc/sys"
  assert_failure 1
  assert_output --partial "0000:d0:00.0 has a 32 GiB 64-bit BAR: Kata 1.10.8 cannot hot-plug it"
  assert_output --partial "use --kata-version 1.11 or later"
  kgb kata-config -p "$NV_HOT" --kata-version 1.11.0 --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["pcie_root_port"]'
  assert_output "1"
  # small BARs work with 1.10: ACPI hotplug behind a bridge
  kgb kata-config -p "$NV_HOT" --kata-version 1.10 --sysfs "$FIXTURES/host-no-iommu/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["hotplug_vfio_on_root_bus"], "pcie_root_port" in t["hypervisor"]["qemu"]'
  assert_output "False False"
}

@test "one root port per PCIe function of the GPUs' IOMMU groups; small BARs take the version's hotplug setting" {
  kgb kata-config -p "$NV_HOT" --sysfs "$FIXTURES/host-geforce/sys" >"$OUT"
  # two GPUs, each with its audio function in its group: Kata plugs all four into root ports
  run toml "$OUT" 't["hypervisor"]["qemu"]["pcie_root_port"]'
  assert_output "4"
  run grep -B1 '^pcie_root_port' "$OUT"
  assert_output --partial "# one PCIe root port per PCIe function in the GPUs' IOMMU groups, as Kata plugs each into its own: 4 on this host"
  kgb kata-config -p "$NV_HOT" --kata-version 2.x --sysfs "$FIXTURES/host-geforce/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["hotplug_vfio_on_root_bus"]'
  assert_output "False"
  # --gpu: only that GPU decides
  kgb kata-config -p "$NV_HOT" --gpu af:00.0 --sysfs "$FIXTURES/host-geforce/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["pcie_root_port"]'
  assert_output "2"
  run grep '^# Host:' "$OUT"
  assert_output "# Host: NVIDIA GPU 0000:af:00.0 (10de:1f08)"
}

@test "--gpu must name a GPU of the profile's vendor" {
  run kgb kata-config -p intel-gvt-d --gpu 0000:86:00.0 --sysfs "$FIXTURES/host-geforce/sys"
  assert_failure 1
  assert_output --partial "--gpu 0000:86:00.0: vendor 10de is not Intel's (8086)"
  run kgb kata-config -p nvidia-gpu --gpu 0000:86:00.1 --sysfs "$FIXTURES/host-geforce/sys"
  assert_failure 1
  assert_output --partial "class 0x040300 is not a display controller"
  run kgb kata-config -p nvidia-gpu --gpu 0000:99:00.0 --sysfs "$FIXTURES/host-geforce/sys"
  assert_failure 1
  assert_output --partial "no PCI device 0000:99:00.0"
  run kgb kata-config -p nvidia-gpu --gpu nonsense --sysfs "$FIXTURES/host-geforce/sys"
  assert_failure 1
  assert_output --partial "'nonsense' is not a PCI address"
}

@test "no GPU of the vendor: the profile's defaults, with a comment saying so" {
  kgb kata-config -p "$NV_HOT" --sysfs "$FIXTURES/host-intel-gvt/sys" >"$OUT"
  run grep '^# Host:' "$OUT"
  assert_output "# Host: no NVIDIA GPU (PCI class 0x03, vendor 10de) found: the profile's defaults"
  run toml "$OUT" 't["hypervisor"]["qemu"]["hot_plug_vfio"], t["hypervisor"]["qemu"]["pcie_root_port"]'
  assert_output "root-port 1"
}

@test "Intel with Kata 1.x: the seed's pc machine type and VFIO on the root bus" {
  kgb kata-config -p intel-gvt-d --kata-version 1.x --sysfs "$FIXTURES/host-intel-gvt/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["machine_type"], t["hypervisor"]["qemu"]["hotplug_vfio_on_root_bus"], "pcie_root_port" in t["hypervisor"]["qemu"]'
  assert_output "pc True False"
}

@test "virgl's QEMU settings only with --experimental-virgl, marked as needing a patched runtime" {
  kgb kata-config -p virgl >"$OUT"
  run grep -c 'virtio_gpu\|display' "$OUT"
  assert_output "1" # the header line saying they are left out
  run toml "$OUT" '"virtio_gpu" in t["hypervisor"]["qemu"]'
  assert_output "False"
  kgb kata-config -p virgl --experimental-virgl >"$OUT"
  golden virgl-experimental.toml "$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["virtio_gpu"], t["hypervisor"]["qemu"]["display"]'
  assert_output "virtio-gpu-gl-pci egl-headless"
  run grep -B1 '^virtio_gpu' "$OUT"
  assert_output --partial "EXPERIMENTAL, needs a runtime patched for virgl"
  run kgb kata-config -p nvidia-gpu --experimental-virgl
  assert_failure 1
  assert_output --partial "--experimental-virgl is for the virgl profile"
}

@test "installed names follow --prefix; an initrd profile sets initrd and no image" {
  kgb kata-config -p nvidia-gpu --prefix /opt/kata --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["kernel"], t["hypervisor"]["qemu"]["image"]'
  assert_output "/opt/kata/share/kata-containers/vmlinuz-nvidia-gpu.container /opt/kata/share/kata-containers/kata-containers-nvidia-gpu.img"
  kgb kata-config -p "$FIXTURES/kata/nvidia-initrd.cfg" --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["initrd"], repr(t["hypervisor"]["qemu"]["image"]), "rootfs_type" in t["hypervisor"]["qemu"]'
  assert_output "/usr/share/kata-containers/kata-containers-initrd-nvidia-initrd.img '' False"
  run kgb kata-config -p nvidia-gpu --prefix relative/path
  assert_failure 2
}

@test "-o and --drop-in write the same TOML atomically; the drop-in number is 50 to 89" {
  kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$OUT"
  kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" -o "$BATS_TEST_TMPDIR/o.toml"
  cmp "$OUT" "$BATS_TEST_TMPDIR/o.toml"
  run kgb_split kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --drop-in "$BATS_TEST_TMPDIR/config.d"
  assert_success
  assert_output "$BATS_TEST_TMPDIR/config.d/50-kata-gpu-nvidia-gpu.toml"
  cmp "$OUT" "$BATS_TEST_TMPDIR/config.d/50-kata-gpu-nvidia-gpu.toml"
  kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --drop-in "$BATS_TEST_TMPDIR/config.d" --priority 75
  run ls "$BATS_TEST_TMPDIR/config.d"
  assert_output "$(printf '50-kata-gpu-nvidia-gpu.toml\n75-kata-gpu-nvidia-gpu.toml')"
  run kgb kata-config -p nvidia-gpu --drop-in "$BATS_TEST_TMPDIR/config.d" --priority 90
  assert_failure 2
  assert_output --partial "--priority takes a number from 50 to 89"
  run kgb kata-config -p nvidia-gpu --priority 60
  assert_failure 2
  run kgb kata-config -p nvidia-gpu -o a.toml --drop-in "$BATS_TEST_TMPDIR/config.d"
  assert_failure 2
  assert_output --partial "exclude each other"
}

@test "--patch keeps every other byte, backs up the original and is idempotent" {
  cfg=$BATS_TEST_TMPDIR/configuration.toml
  cp "$FIXTURES/kata/configuration-qemu-3.toml" "$cfg"
  chmod 0640 "$cfg"
  run kgb_split kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" --check
  assert_failure 3
  cmp "$cfg" "$FIXTURES/kata/configuration-qemu-3.toml" # --check writes nothing
  [ ! -e "$cfg.bak" ]
  kgb_split kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" >"$BATS_TEST_TMPDIR/diff"
  golden patch-nvidia-gpu-3.x.toml "$cfg"
  sed "s|$BATS_TEST_TMPDIR/||g" "$BATS_TEST_TMPDIR/diff" >"$BATS_TEST_TMPDIR/diff.rel"
  golden patch-nvidia-gpu-3.x.diff "$BATS_TEST_TMPDIR/diff.rel"
  cmp "$cfg.bak" "$FIXTURES/kata/configuration-qemu-3.toml"
  run stat -c %a "$cfg"
  assert_output "640"
  # the diff is exact: applied to the original it gives the patched file
  cp "$FIXTURES/kata/configuration-qemu-3.toml" "$BATS_TEST_TMPDIR/orig.toml"
  patch -s "$BATS_TEST_TMPDIR/orig.toml" <"$BATS_TEST_TMPDIR/diff"
  cmp "$BATS_TEST_TMPDIR/orig.toml" "$cfg"
  # only the lines of the keys set changed: the rest is byte for byte the same
  python3 - "$FIXTURES/kata/configuration-qemu-3.toml" "$cfg" <<'PY'
import difflib, re, sys
a = open(sys.argv[1], "rb").read().decode().splitlines(keepends=True)
b = open(sys.argv[2], "rb").read().decode().splitlines(keepends=True)
keys = {"kernel", "image", "kernel_params", "default_memory", "guest_hook_path", "hot_plug_vfio",
        "dial_timeout", "create_container_timeout", "static_sandbox_resource_mgmt",
        "cold_plug_vfio", "pcie_root_port", "kernel_modules", "rootfs_type", "machine_type", "vfio_mode",
        "disable_image_nvdimm"}
for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
    if tag == "equal":
        continue
    for line in a[i1:i2] + b[j1:j2]:
        # a key added at the end of its table comes with its reason, a comment line
        if tag == "insert" and line.startswith("# "):
            continue
        m = re.match(r"^#? ?([a-z_]+)\s*=", line)
        if not m or m.group(1) not in keys:
            sys.exit(f"unexpected change: {line!r}")
PY
  # it still parses, with the new values
  toml "$cfg" 't["hypervisor"]["qemu"]["hot_plug_vfio"], t["hypervisor"]["qemu"]["pcie_root_port"], t["agent"]["kata"]["kernel_modules"]'
  # a second run changes nothing and writes no second backup
  run kgb_split kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg"
  assert_success
  assert_output ""
  grep -q "already has these settings" "$BATS_TEST_TMPDIR/stderr"
  golden patch-nvidia-gpu-3.x.toml "$cfg"
  [ ! -e "$cfg.bak.1" ]
  run kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" --check
  assert_success
}

@test "--patch edits the file in place: owner, hard links and xattrs stay" {
  cfg=$BATS_TEST_TMPDIR/configuration.toml
  cp "$FIXTURES/kata/configuration-qemu-3.toml" "$cfg"
  chown nobody:nogroup "$cfg"
  chmod 0640 "$cfg"
  ln "$cfg" "$BATS_TEST_TMPDIR/hardlink.toml"
  setfattr -n user.test -v 1 "$cfg"
  inode=$(stat -c %i "$cfg")
  kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" >/dev/null
  golden patch-nvidia-gpu-3.x.toml "$cfg"
  run stat -c '%U %a %i %h' "$cfg"
  assert_output "nobody 640 $inode 2"
  cmp "$cfg" "$BATS_TEST_TMPDIR/hardlink.toml" # the other name sees the new content
  run getfattr --absolute-names --only-values -n user.test "$cfg"
  assert_output "1"
  # the backup carries the original's owner and attributes too
  cmp "$cfg.bak" "$FIXTURES/kata/configuration-qemu-3.toml"
  run stat -c '%U %a' "$cfg.bak"
  assert_output "nobody 640"
  run getfattr --absolute-names --only-values -n user.test "$cfg.bak"
  assert_output "1"
}

@test "--patch and -o refuse a read-only file with a clear message, and write nothing" {
  cfg=$BATS_TEST_TMPDIR/configuration.toml
  cp "$FIXTURES/kata/configuration-qemu-3.toml" "$cfg"
  chmod 0444 "$cfg"
  run kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg"
  assert_failure 1
  assert_output --partial "cannot patch '$cfg': it is read-only (mode 0444)"
  cmp "$cfg" "$FIXTURES/kata/configuration-qemu-3.toml"
  [ ! -e "$cfg.bak" ]
  # --check writes nothing, so it may look at a read-only file
  run kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" --check
  assert_failure 3
  run kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" -o "$cfg"
  assert_failure 1
  assert_output --partial "cannot write '$cfg': it is read-only (mode 0444)"
  cmp "$cfg" "$FIXTURES/kata/configuration-qemu-3.toml"
}

@test "-o /dev/stdout reaches stdout; -o through a symbolic link writes its target" {
  kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$OUT"
  # a scratch /dev in a private mount namespace: a regression replaces its link, not the host's
  unshare -m bash -c '
    mount -t tmpfs tmpfs /dev && ln -s /proc/self/fd/1 /dev/stdout &&
    "$0" --workdir "$1" kata-config -p nvidia-gpu --sysfs "$2" -o /dev/stdout >"$3" &&
    [ -L /dev/stdout ]' "$KGB" "$WORKDIR" "$FIXTURES/host-nvidia-dc/sys" "$BATS_TEST_TMPDIR/stdout.toml"
  cmp "$OUT" "$BATS_TEST_TMPDIR/stdout.toml"
  echo old >"$BATS_TEST_TMPDIR/target.toml"
  ln -s target.toml "$BATS_TEST_TMPDIR/link.toml"
  kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" -o "$BATS_TEST_TMPDIR/link.toml"
  [ -L "$BATS_TEST_TMPDIR/link.toml" ]
  cmp "$OUT" "$BATS_TEST_TMPDIR/target.toml"
}

@test "-o /dev/null stays a device (in a private mount namespace over a scratch /dev)" {
  # the real /dev is never at risk: the tmpfs and its node exist only in this namespace
  run unshare -m bash -c '
    mount -t tmpfs tmpfs /dev &&
    mknod -m 666 /dev/null c 1 3 &&
    "$0" --workdir "$1" kata-config -p nvidia-gpu --sysfs "$2" -o /dev/null &&
    [ -c /dev/null ] && echo still-a-device' "$KGB" "$WORKDIR" "$FIXTURES/host-nvidia-dc/sys"
  assert_success
  assert_output --partial "still-a-device"
}

@test "--patch on a Kata 1.x layout: uncomments the seed's key, adds missing ones to their table" {
  cfg=$BATS_TEST_TMPDIR/configuration.toml
  cp "$FIXTURES/kata/configuration-qemu-1.toml" "$cfg"
  kgb kata-config -p intel-gvt-g --kata-version 1.x --sysfs "$FIXTURES/host-intel-gvt/sys" --patch "$cfg" >/dev/null
  golden patch-intel-gvt-g-1.x.toml "$cfg"
  run grep -n '^hotplug_vfio_on_root_bus = true$' "$cfg"
  # where '#hotplug_vfio_on_root_bus = true' was (line 52 of the original; the
  # disable_image_nvdimm setting and its reason are added above it)
  assert_output "54:hotplug_vfio_on_root_bus = true"
  cp "$FIXTURES/kata/configuration-qemu-1.toml" "$cfg"
  kgb kata-config -p nvidia-gpu --kata-version 2.x --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" >/dev/null
  golden patch-nvidia-gpu-2.x.toml "$cfg"
  # [runtime] had no vfio_mode: it is added after the table's last key, with its reason
  run tail -2 "$cfg"
  assert_line --index 0 --partial "# the GPU is driven by its driver in the guest kernel"
  assert_line --index 1 'vfio_mode = "guest-kernel"'
  toml "$cfg" 't["runtime"]["vfio_mode"], t["hypervisor"]["qemu"]["pcie_root_port"]'
}

@test "--patch of an initrd profile switches the image off and the initrd on" {
  cfg=$BATS_TEST_TMPDIR/configuration.toml
  cp "$FIXTURES/kata/configuration-qemu-3.toml" "$cfg"
  kgb kata-config -p "$FIXTURES/kata/nvidia-initrd.cfg" --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" >/dev/null
  run grep -n '^#\?image\|^#\? \?initrd' "$cfg"
  assert_line --index 0 '8:#image = "/opt/kata/share/kata-containers/kata-containers.img"'
  assert_line --index 1 '9:initrd = "/usr/share/kata-containers/kata-containers-initrd-nvidia-initrd.img"'
  run toml "$cfg" '"image" in t["hypervisor"]["qemu"]'
  assert_output "False"
  run kgb kata-config -p "$FIXTURES/kata/nvidia-initrd.cfg" --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" --check
  assert_success
}

@test "--patch refuses a file that is not valid TOML, with its line, and writes nothing" {
  cfg=$BATS_TEST_TMPDIR/configuration.toml
  cp "$FIXTURES/kata/configuration-qemu-3.toml" "$cfg"
  sed -i "40s/.*/default_maxvcpus = one/" "$cfg"
  cp "$cfg" "$BATS_TEST_TMPDIR/before"
  run kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg"
  assert_failure 1
  assert_output --partial "$cfg:40: invalid value 'one' (strings need quotes)"
  cmp "$cfg" "$BATS_TEST_TMPDIR/before"
  [ ! -e "$cfg.bak" ]
  run kgb kata-config -p nvidia-gpu --patch "$BATS_TEST_TMPDIR/missing.toml"
  assert_failure 1
  assert_output --partial "cannot patch '$BATS_TEST_TMPDIR/missing.toml'"
  run kgb kata-config -p nvidia-gpu --check
  assert_failure 2
  assert_output --partial "--check goes with --patch FILE"
}

@test "--patch and --check on a file without a final newline: valid TOML, exact diff, idempotent" {
  # the last table takes two new keys (a), or one key and then new tables (b); each insertion
  # used to rewrite the file's last line again and corrupt the heap, --check included
  cfg=$BATS_TEST_TMPDIR/configuration.toml
  printf '[agent.kata]\nenable_debug = false\n\n[hypervisor.qemu]\npath = "/usr/bin/qemu"' >"$BATS_TEST_TMPDIR/a.toml"
  printf '[agent.kata]\nenable_debug = false' >"$BATS_TEST_TMPDIR/b.toml"
  for orig in "$BATS_TEST_TMPDIR/a.toml" "$BATS_TEST_TMPDIR/b.toml"; do
    cp "$orig" "$cfg"
    run kgb_split kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" --check
    assert_failure 3
    cmp "$cfg" "$orig"
    [ ! -e "$cfg.bak" ]
    kgb_split kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" >"$BATS_TEST_TMPDIR/diff"
    cmp "$cfg.bak" "$orig"
    rm "$cfg.bak"
    run toml "$cfg" 't["agent"]["kata"], t["hypervisor"]["qemu"]["pcie_root_port"], t["runtime"]["vfio_mode"]'
    assert_output "{'enable_debug': False, 'kernel_modules': ['nvidia', 'nvidia_uvm'], 'dial_timeout': 1200} 8 guest-kernel"
    # every original line is still there, in order, and the diff gives the patched file
    run python3 -c 'import sys; a = open(sys.argv[1]).read().splitlines(); b = open(sys.argv[2]).read().splitlines(); it = iter(b); print(all(l in it for l in a))' "$orig" "$cfg"
    assert_output "True"
    cp "$orig" "$BATS_TEST_TMPDIR/orig.toml"
    patch -s "$BATS_TEST_TMPDIR/orig.toml" <"$BATS_TEST_TMPDIR/diff"
    cmp "$BATS_TEST_TMPDIR/orig.toml" "$cfg"
    cp "$cfg" "$BATS_TEST_TMPDIR/once"
    run kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg" --check
    assert_success
    run kgb_split kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$cfg"
    assert_success
    assert_output ""
    cmp "$cfg" "$BATS_TEST_TMPDIR/once"
    [ ! -e "$cfg.bak" ]
  done
}

@test "--json: one document with the settings, their reasons and the TOML" {
  kgb --json kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$BATS_TEST_TMPDIR/k.json"
  run json '[s["key"] for s in j["settings"] if s["table"] == "hypervisor.qemu"][-3:], j["large_bar"], j["gpus"]' <"$BATS_TEST_TMPDIR/k.json"
  assert_output "['cold_plug_vfio', 'pcie_root_port', 'guest_hook_path'] 0000:d0:00.0 has a 32 GiB 64-bit BAR ['0000:d0:00.0']"
  json 'j["toml"]' <"$BATS_TEST_TMPDIR/k.json" | python3 -c 'import sys, tomllib; tomllib.loads(sys.stdin.read())'
  run json 'all(s["why"] for s in j["settings"])' <"$BATS_TEST_TMPDIR/k.json"
  assert_output "True"
}

@test "a machine type the release refuses is an error; a loss is an error unless --allow-loss" {
  printf '@include "virgl.cfg"\noverride = {\n  kata = { machine_type = "pc"; };\n};\n' >"$BATS_TEST_TMPDIR/pc.cfg"
  run kgb kata-config -p "$BATS_TEST_TMPDIR/pc.cfg" --kata-version 3.17.0
  assert_failure 1
  assert_output --partial 'machine_type "pc": Kata 3.17.0 refuses it (it takes q35, microvm)'
  kgb kata-config -p "$BATS_TEST_TMPDIR/pc.cfg" --kata-version 2.1 >"$OUT"
  run toml "$OUT" 't["hypervisor"]["qemu"]["machine_type"]'
  assert_output "pc"
  # runtime-rs 4.x only cold-plugs: a profile that hot-plugs loses it, and is told so
  run kgb_split kata-config -p intel-gvt-d --runtime rs --kata-version 4.1.0 --sysfs "$FIXTURES/host-intel-gvt/sys"
  assert_failure 1
  run kgb_split kata-config -p intel-gvt-d --runtime rs --kata-version 4.1.0 --sysfs "$FIXTURES/host-intel-gvt/sys" --allow-loss
  assert_success
  grep -q "warning: Kata 4.1.0 (runtime-rs) has no hypervisor.qemu.hot_plug_vfio: lost: the profile hot-plugs GPUs" "$BATS_TEST_TMPDIR/stderr"
  assert_line --partial "# LOST (--allow-loss): Kata 4.1.0 (runtime-rs) has no hot_plug_vfio"
  kgb --json kata-config -p nvidia-gpu --runtime rs --kata-version 3.x --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$BATS_TEST_TMPDIR/k.json"
  run json 'j["kata_version"], j["runtime"], j["kata_version_from"]' <"$BATS_TEST_TMPDIR/k.json"
  assert_output "3.32.0 rs as given"
}

@test "--base: the base and its drop-ins as Kata merges them; kernel_params keeps theirs" {
  stock=$FIXTURES/kata/stock
  # through the symlink, as Kata resolves it: config.d is beside configuration-qemu.toml
  run kgb_split kata-config -p nvidia-gpu --base "$stock/configuration.toml" --sysfs "$FIXTURES/host-nvidia-dc/sys"
  assert_success
  # Kata's cgroup_no_v1=all and kata-deploy's proxy setting stay, the profile's come after
  run toml <(echo "$output") 't["hypervisor"]["qemu"]["kernel_params"]'
  assert_output "cgroup_no_v1=all agent.https_proxy=http://proxy.example:3128 pci=realloc pci=nocrs pci=assign-busses"
  # the later drop-in wins over this one's default_memory, and it says so
  grep -q "90-site.toml:3 sets hypervisor.qemu.default_memory and sorts after this drop-in: its value wins" "$BATS_TEST_TMPDIR/stderr"
  # the merged result: base, then 30, then ours (50), then 90
  kgb kata-config -p nvidia-gpu --base "$stock/configuration.toml" --sysfs "$FIXTURES/host-nvidia-dc/sys" --drop-in "$BATS_TEST_TMPDIR/d" >/dev/null
  python3 - "$stock/configuration-qemu.toml" "$stock/config.d/30-kernel-params.toml" "$BATS_TEST_TMPDIR/d/50-kata-gpu-nvidia-gpu.toml" "$stock/config.d/90-site.toml" <<'PY'
import sys, tomllib
eff = {}
for f in sys.argv[1:]:
    t = tomllib.load(open(f, "rb"))
    for k, v in t.get("hypervisor", {}).get("qemu", {}).items():
        eff[k] = v
assert eff["kernel_params"].startswith("cgroup_no_v1=all agent.https_proxy="), eff["kernel_params"]
assert "pci=realloc" in eff["kernel_params"]
assert eff["default_memory"] == 4096
assert eff["disable_image_nvdimm"] is True and eff["cold_plug_vfio"] == "root-port"
assert eff["image"].endswith("kata-containers-nvidia-gpu.img")
PY
  # a second run over the result adds nothing twice
  mkdir -p "$BATS_TEST_TMPDIR/base2"
  cp "$stock/configuration-qemu.toml" "$BATS_TEST_TMPDIR/base2/configuration.toml"
  kgb kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$BATS_TEST_TMPDIR/base2/configuration.toml" >/dev/null
  run kgb_split kata-config -p nvidia-gpu --sysfs "$FIXTURES/host-nvidia-dc/sys" --patch "$BATS_TEST_TMPDIR/base2/configuration.toml"
  assert_success
  assert_output ""
  run toml "$BATS_TEST_TMPDIR/base2/configuration.toml" 't["hypervisor"]["qemu"]["kernel_params"]'
  assert_output "cgroup_no_v1=all pci=realloc pci=nocrs pci=assign-busses"
  # --explain: each key, where its value comes from now, and what it becomes
  run kgb kata-config -p nvidia-gpu --base "$stock/configuration.toml" --sysfs "$FIXTURES/host-nvidia-dc/sys" --explain
  assert_success
  assert_line "Kata 4.1.0 (Go runtime): $stock/configuration.toml -> $stock/configuration-qemu.toml"
  assert_line "  drop-ins in $stock/config.d: 30-kernel-params.toml 90-site.toml (after this one)"
  assert_line "  now:  \"cgroup_no_v1=all agent.https_proxy=http://proxy.example:3128\" ($stock/config.d/30-kernel-params.toml:3)"
  assert_line "  then: 4096 ($stock/config.d/90-site.toml:3, which sorts after this drop-in)"
  kgb --json kata-config -p nvidia-gpu --base "$stock/configuration.toml" --sysfs "$FIXTURES/host-nvidia-dc/sys" >"$BATS_TEST_TMPDIR/k.json"
  run json '[(k["key"], k["from"].rsplit("/", 1)[-1], k["line"]) for k in j["effective"]["keys"] if k["key"] == "kernel_params"]' <"$BATS_TEST_TMPDIR/k.json"
  assert_output "[('kernel_params', '30-kernel-params.toml', 3)]"
}

@test "--base with an initrd: an image profile clears it, as Kata takes one or the other" {
  printf '[hypervisor.qemu]\ninitrd = "/usr/share/kata-containers/kata-containers-initrd.img"\n' >"$BATS_TEST_TMPDIR/c.toml"
  kgb kata-config -p virgl --base "$BATS_TEST_TMPDIR/c.toml" >"$OUT"
  run toml "$OUT" 'repr(t["hypervisor"]["qemu"]["initrd"]), t["hypervisor"]["qemu"]["image"]'
  assert_output "'' /usr/share/kata-containers/kata-containers-virgl.img"
  run grep -B1 '^initrd' "$OUT"
  assert_output --partial "and $BATS_TEST_TMPDIR/c.toml:2 sets an initrd: no initrd"
  # --patch comments the base's initrd out
  kgb kata-config -p virgl --patch "$BATS_TEST_TMPDIR/c.toml" >/dev/null
  run toml "$BATS_TEST_TMPDIR/c.toml" '"initrd" in t["hypervisor"]["qemu"], t["hypervisor"]["qemu"]["image"]'
  assert_output "False /usr/share/kata-containers/kata-containers-virgl.img"
  # a base that is not TOML is refused with its line
  printf '[hypervisor.qemu]\nkernel_params = \n' >"$BATS_TEST_TMPDIR/bad.toml"
  run kgb kata-config -p virgl --base "$BATS_TEST_TMPDIR/bad.toml"
  assert_failure 1
  assert_output --partial "$BATS_TEST_TMPDIR/bad.toml:2"
  run kgb kata-config -p virgl --base "$BATS_TEST_TMPDIR/missing.toml"
  assert_failure 1
  assert_output --partial "missing.toml"
}

@test "bad input: no profile, unknown version, unknown option" {
  run kgb kata-config
  assert_failure 2
  assert_output --partial "-p PROFILE is required"
  run kgb kata-config -p nvidia-gpu --kata-version 5.x
  assert_failure 1
  assert_output --partial "unknown Kata release '5.x': give a published release (1.3.0 to 4.1.0)"
  run kgb kata-config -p nvidia-gpu --kata-version 3.2.1
  assert_failure 1
  assert_output --partial "unknown Kata release '3.2.1'"
  run kgb kata-config -p nvidia-gpu --runtime java
  assert_failure 2
  assert_output --partial "--runtime takes go or rs, not 'java'"
  run kgb kata-config -p nvidia-gpu --kata-verison 3.x
  assert_failure 2
  assert_output --partial "did you mean '--kata-version'"
  run kgb kata-config -p nvidia-gpu --sysfs "$BATS_TEST_TMPDIR/nothing"
  assert_failure 1
  assert_output --partial "is '$BATS_TEST_TMPDIR/nothing' a sysfs tree?"
}

@test "works on this machine's real /sys, read-only" {
  run kgb kata-config -p nvidia-gpu
  assert_success
  assert_line --regexp '^# Host: '
  run kgb kata-config -p intel-gvt-d --kata-version 2.x
  assert_success
}
