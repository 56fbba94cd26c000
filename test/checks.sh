# What the shell tests (sweep-cli-test.sh, sweep-mpi-test.sh) share: named checks that print
# ok/FAIL and count the failures in $fails. Source it.
fails=0

check() { # check DESCRIPTION CONDITION...
    local what="$1"
    shift
    if "$@"; then
        echo "ok: $what"
    else
        echo "FAIL: $what"
        fails=$((fails + 1))
    fi
}
