// The report of stored runs (`v4bench report`): the 1M-token headline, each run's facts and its
// suite's table, then the charts across runs and each run's own figures. Reads only the store.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/render/document.h"
#include "reports/render/views/view.h"

namespace v4b::views {

render::Document build_report(const std::vector<StoredRun>& runs);

// One line for reports and `runs show`: the numerics a run's params record ("official";
// "v4-tiny official, gqa-tiny fp32"; "base fp32, candidate official"), or "" where none apply.
std::string numerics_summary(const nlohmann::json& params);

}  // namespace v4b::views
