package aten

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShimMatches(t *testing.T) { require.NoError(t, CheckShim()) }
