# bash completion for kata-gpu-builder: commands, verbs, profile names and the common options
_kata_gpu_builder() {
  local cur prev words cword
  _init_completion || return
  local cmd="" verb="" i
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      --workdir | --jobs) ((i++)) ;;
      -*) ;;
      *) if [[ -z $cmd ]]; then cmd=${words[i]}; elif [[ -z $verb ]]; then verb=${words[i]}; fi ;;
    esac
  done
  case $prev in
    -p | --profile)
      COMPREPLY=($(compgen -W "$(kata-gpu-builder profiles 2>/dev/null | awk 'NR > 1 {print $1}')" -- "$cur"))
      compopt -o filenames 2>/dev/null
      COMPREPLY+=($(compgen -f -X '!*.cfg' -- "$cur"))
      return ;;
    -g | --gpu) COMPREPLY=($(compgen -W "nvidia intel virgl" -- "$cur")); return ;;
    -H | --headers) COMPREPLY=($(compgen -W "deb rpm tar" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "ext4 erofs initrd" -- "$cur")); return ;;
    --accel) COMPREPLY=($(compgen -W "auto kvm tcg" -- "$cur")); return ;;
    --workdir | --destdir | --drop-in | -k | --kernel-source | --sysfs | --proc | --boot)
      _filedir -d; return ;;
    --fragment | -o | --output | --patch | --kernel | --initrd | --modules) _filedir; return ;;
    --image) _filedir img; return ;;
  esac
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "--workdir --json --quiet --verbose --jobs --dry-run --no-wait --help --version" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "profiles profile kernel rootfs image kata-config host kubevirt oci-devices build boot-test help" -- "$cur"))
    fi
    return
  fi
  if [[ -z $verb && $cur != -* ]]; then
    case $cmd in
      profile) COMPREPLY=($(compgen -W "show" -- "$cur")) ;;
      kernel) COMPREPLY=($(compgen -W "config setup build install headers build-headers verify" -- "$cur")) ;;
      rootfs | image) COMPREPLY=($(compgen -W "build" -- "$cur")) ;;
      host) COMPREPLY=($(compgen -W "check bind unbind mdev" -- "$cur")) ;;
      help) COMPREPLY=($(compgen -W "profiles profile kernel rootfs image kata-config host kubevirt oci-devices build boot-test" -- "$cur")) ;;
    esac
    [[ ${#COMPREPLY[@]} -gt 0 ]] && return
  fi
  if [[ $cur == -* ]]; then
    local opts="--profile --help --force --kernel-source --fragment --output --json"
    [[ $cmd == boot-test ]] && opts="--profile --help --kernel-source --accel --timeout --kernel --initrd --image --no-image --append --modules --memory --qemu"
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  fi
} &&
  complete -F _kata_gpu_builder kata-gpu-builder
