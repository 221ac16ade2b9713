# Stands in for the kernel on a writable copy of a host-* fixture tree: a background loop that
# reacts to the sysfs writes of `host bind|unbind` and `host mdev create|remove` the way Linux
# does (unbind drops the driver link, drivers_probe binds the driver_override or the vendor's
# driver, an mdev type's `create` makes the device with a new IOMMU group and its /dev/vfio
# node, `remove` takes it away). Load it from a bats file and call fake_kernel_start SYS DEV in
# setup, fake_kernel_stop in teardown.

fake_kernel_start() {
  _fake_kernel_loop "$1" "$2" &
  FAKE_KERNEL_PID=$!
}

fake_kernel_stop() {
  if [ -n "${FAKE_KERNEL_PID:-}" ]; then
    kill "$FAKE_KERNEL_PID" 2>/dev/null || true
    wait "$FAKE_KERNEL_PID" 2>/dev/null || true
    FAKE_KERNEL_PID=
  fi
}

_fake_default_driver() {
  case $(cat "$1/vendor") in
  0x10de) echo nvidia ;;
  0x8086) [ "$(cut -c1-4 "$1/class")" = 0x03 ] && echo i915 ;;
  esac
}

_fake_next_group() {
  local g max=0
  for g in "$1"/kernel/iommu_groups/*; do
    [ -e "$g" ] || continue
    g=${g##*/}
    [ "$g" -gt "$max" ] && max=$g
  done
  echo $((max + 1))
}

_fake_unbinds() {
  local f bdf
  for f in "$1"/bus/pci/drivers/*/unbind; do
    [ -s "$f" ] || continue
    bdf=$(cat "$f")
    : >"$f"
    rm -f "$1/bus/pci/devices/$bdf/driver"
  done
}

_fake_kernel_step() {
  local sys=$1 dev=$2 f bdf d drv uuid tdir pdir g type
  _fake_unbinds "$sys"
  if [ -s "$sys/bus/pci/drivers_probe" ]; then
    # an unbind written before this probe may have arrived after the loop above
    _fake_unbinds "$sys"
    bdf=$(cat "$sys/bus/pci/drivers_probe")
    : >"$sys/bus/pci/drivers_probe"
    d=$sys/bus/pci/devices/$bdf
    if [ ! -e "$d/driver" ]; then
      drv=$(cat "$d/driver_override")
      if [ -z "$drv" ] || [ "$drv" = "(null)" ]; then
        drv=$(_fake_default_driver "$d")
      fi
      if [ -n "$drv" ] && [ -d "$sys/bus/pci/drivers/$drv" ]; then
        if [ "$drv" = vfio-pci ] && [ -e "$d/iommu_group" ]; then
          g=$(basename "$(readlink "$d/iommu_group")")
          mkdir -p "$dev/vfio" && : >"$dev/vfio/$g"
        fi
        ln -sr "$sys/bus/pci/drivers/$drv" "$d/driver"
      fi
    fi
  fi
  for f in "$sys"/devices/*/*/mdev_supported_types/*/create; do
    [ -s "$f" ] || continue
    uuid=$(cat "$f")
    : >"$f"
    tdir=${f%/create}
    type=${tdir##*/}
    pdir=${tdir%/mdev_supported_types/*}
    echo $(($(cat "$tdir/available_instances") - 1)) >"$tdir/available_instances"
    g=$(_fake_next_group "$sys")
    mkdir -p "$pdir/$uuid" "$sys/kernel/iommu_groups/$g/devices" "$tdir/devices" \
      "$sys/bus/mdev/devices" "$dev/vfio"
    : >"$pdir/$uuid/remove"
    : >"$dev/vfio/$g"
    ln -sr "$tdir" "$pdir/$uuid/mdev_type"
    ln -sr "$pdir/$uuid" "$tdir/devices/$uuid"
    ln -sr "$pdir/$uuid" "$sys/kernel/iommu_groups/$g/devices/$uuid"
    ln -sr "$pdir/$uuid" "$sys/bus/mdev/devices/$uuid"
    ln -sr "$sys/kernel/iommu_groups/$g" "$pdir/$uuid/iommu_group"
  done
  for f in "$sys"/bus/mdev/devices/*/remove; do
    [ -s "$f" ] || continue
    d=$(dirname "$f")
    uuid=${d##*/}
    pdir=$(readlink -f "$d")
    tdir=$(readlink -f "$pdir/mdev_type")
    g=$(basename "$(readlink "$pdir/iommu_group")")
    echo $(($(cat "$tdir/available_instances") + 1)) >"$tdir/available_instances"
    rm -rf "$sys/kernel/iommu_groups/$g" "$tdir/devices/$uuid" "$pdir" "$dev/vfio/$g"
    rm -f "$sys/bus/mdev/devices/$uuid"
  done
}

_fake_kernel_loop() {
  while :; do
    _fake_kernel_step "$1" "$2"
    sleep 0.02
  done
}
