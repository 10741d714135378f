// The generated op table (cpp/aten_gen_index.cpp and its parts, made by cmd/atengen).
#pragma once

#include "aten_call.h"

extern const int32_t hc_aten_gen_count;
extern const char hc_aten_gen_hash[];
// The entry of op id, or NULL.
const hc::aten::Entry *hc_aten_gen_entry(int32_t id);
