#!/bin/sh
# Every skip in the test suites goes through tm_test_skip (tests/test_skip.h),
# which prints the reason and the missing capability; a bare cmocka skip()
# is reported as "no reason given" and cannot be refused where the
# capability exists. This fails, naming file and line, on any bare skip().
# usage: skip_lint.sh TESTS_DIR
dir=${1:?usage: skip_lint.sh TESTS_DIR}
[ -f "$dir/test_skip.h" ] || { echo "skip_lint: $dir/test_skip.h not found"; exit 1; }
hits=$(find "$dir" -name '*.[ch]' ! -name test_skip.h -exec grep -nE '(^|[^A-Za-z0-9_])skip[[:space:]]*\([[:space:]]*\)' {} + )
if [ -n "$hits" ]; then
	echo "bare cmocka skip() (use tm_test_skip(cap, \"reason\") from tests/test_skip.h):"
	echo "$hits"
	exit 1
fi
n=$(find "$dir" -name '*.[ch]' -exec grep -l 'tm_test_skip' {} + | wc -l)
echo "no bare skip() under $dir; $n files use tm_test_skip"
