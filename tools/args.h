#pragma once
// A small command-line parser for the `sluice` subcommands: `--name value`, `--name=value`,
// boolean flags, repeatable options and positional arguments. Each subcommand declares the
// options it knows; anything else is a usage error (errc::bad_argument) naming the option.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/record_batch.h"
#include "tools/errc.h"

namespace sluice::tools {

struct option_spec {
    std::string name;  // without the leading "--"
    bool takes_value = true;
    bool repeatable = false;
};

class args {
  public:
    [[nodiscard]] static result<args> parse(int argc, char** argv,
                                            const std::vector<option_spec>& specs);

    bool has(const std::string& name) const { return _values.contains(name); }
    // The last value given for an option.
    std::optional<std::string> get(const std::string& name) const;
    std::string get_or(const std::string& name, std::string fallback) const;
    // Every value of a repeatable option, in order.
    std::vector<std::string> all(const std::string& name) const;
    const std::vector<std::string>& positional() const { return _positional; }

    // Numbers with range checks; "16KiB", "1MiB", "1k", "2M" suffixes for sizes and counts.
    [[nodiscard]] result<int64_t> integer(const std::string& name, int64_t fallback,
                                          int64_t min = INT64_MIN, int64_t max = INT64_MAX) const;
    [[nodiscard]] result<double> number(const std::string& name, double fallback) const;

  private:
    std::map<std::string, std::vector<std::string>> _values;
    std::vector<std::string> _positional;
};

// Parses "123", "16KiB" / "16K" / "16k" (x1024 for KiB/K, x1000 for k), "1MiB", "2GiB", "1M".
[[nodiscard]] result<int64_t> parse_scaled(std::string_view s);

// Splits "k=v" at the first '='; error when there is none (or the key is empty).
[[nodiscard]] result<std::pair<std::string, std::string>> parse_key_value(std::string_view s);
// --acks: "0", "1", "all" or "-1" (as Kafka's producers spell it) -> the request's acks value.
[[nodiscard]] result<int16_t> parse_acks(std::string_view s);
// --compression: none | gzip | snappy | lz4 | zstd.
[[nodiscard]] result<model::compression> parse_compression(std::string_view s);

}  // namespace sluice::tools
