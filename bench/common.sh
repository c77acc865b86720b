# Shared by bench/nginx-ceiling, bench/run-gateway and bench/run-all (sourced, not run).

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# find_tool NAME SUBDIR: the built executable NAME, from $SAFEGATE_BUILD (default build/).
find_tool() {
  local build="${SAFEGATE_BUILD:-$bench_root/build}" path
  path="$build/$2/$1"
  if [[ ! -x "$path" ]]; then
    echo "$(basename "$0"): $path not found; build it first:" \
         "cmake --build $build --target $1 (or set SAFEGATE_BUILD to a build directory)" >&2
    return 1
  fi
  echo "$path"
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago (bind port 0, release).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# machine_line: one line naming the machine the figures come from.
machine_line() {
  local model mem
  model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  echo "$(nproc) x ${model:-unknown CPU}, $mem RAM, Linux $(uname -r)"
}
