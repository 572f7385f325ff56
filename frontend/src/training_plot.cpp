// kiln::training::extensions::PlotReport: PNG line charts of observations, drawn with cairo.
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>

#include "kiln/files.h"
#include "kiln/training.h"

namespace kiln::training::extensions {

namespace {

// "Nice" tick positions covering [lo, hi] (steps of 1, 2 or 5 times a power of ten).
std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  double span = hi - lo;
  if (!(span > 0)) return {lo};
  double raw = span / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string tick_label(double v) { return fmt::format("{:.4g}", v); }

struct Color {
  double r, g, b;
};
// matplotlib's tab10 colors.
const Color kColors[] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                         {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                         {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                         {0.090, 0.745, 0.812}};

}  // namespace

PlotReport::PlotReport(std::vector<std::string> y_keys, std::string x_key, Trigger trigger, std::string file_name,
                       bool grid)
    : y_keys_(std::move(y_keys)), x_key_(std::move(x_key)), trigger_(std::move(trigger)),
      file_name_(std::move(file_name)), grid_(grid) {
  if (x_key_ != "iteration" && x_key_ != "epoch")
    throw Error("kiln: PlotReport: x_key must be 'iteration' or 'epoch', got '" + x_key_ + "'");
  if (!trigger_) trigger_ = Trigger(1, "epoch");
}

std::string PlotReport::default_name() const { return "PlotReport"; }

void PlotReport::operator()(Trainer& trainer) {
  for (const std::string& k : y_keys_) {
    auto it = trainer.observation.find(k);
    if (it != trainer.observation.end() && !it->second.is_null()) summary_.add(k, observation_value(it->second));
  }
  if (!trigger_(trainer)) return;
  double x = x_key_ == "epoch" ? static_cast<double>(trainer.updater().epoch())
                               : static_cast<double>(trainer.updater().iteration());
  for (const auto& [k, mean] : summary_.compute_mean()) data_[k].emplace_back(x, mean);
  summary_.reset();
  std::string path = trainer.out().empty() ? file_name_ : (std::filesystem::path(trainer.out()) / file_name_).string();
  write_png(path, y_keys_, data_, x_key_, grid_);
}

void PlotReport::serialize(ArrayMap& out, const std::string& prefix) const {
  summary_.serialize(out, prefix + "_summary/");
  for (const auto& [k, pts] : data_) {
    std::vector<double> flat;
    for (const auto& [x, y] : pts) {
      flat.push_back(x);
      flat.push_back(y);
    }
    out[prefix + "_data/" + k] = Array::from(flat, Shape{static_cast<int64_t>(pts.size()), 2});
  }
}

void PlotReport::deserialize(const ArrayMap& in, const std::string& prefix) {
  summary_.deserialize(in, prefix + "_summary/");
  std::string dp = prefix + "_data/";
  data_.clear();
  for (auto it = in.lower_bound(dp); it != in.end() && it->first.compare(0, dp.size(), dp) == 0; ++it) {
    const Array& a = it->second;
    auto& pts = data_[it->first.substr(dp.size())];
    for (int64_t i = 0; i + 1 < a.size(); i += 2) pts.emplace_back(a.at(i), a.at(i + 1));
  }
}

void PlotReport::write_png(const std::string& path, const std::vector<std::string>& y_keys,
                           const std::map<std::string, std::vector<std::pair<double, double>>>& data,
                           const std::string& x_label, bool grid) {
  const int W = 640, H = 480;
  const double left = 72, right = 20, top = 20, bottom = 52;
  const double pw = W - left - right, ph = H - top - bottom;

  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& k : y_keys) {
    auto it = data.find(k);
    if (it == data.end()) continue;
    for (const auto& [x, y] : it->second) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x);
      ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
  }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  if (xmax <= xmin) xmin -= 0.5, xmax += 0.5;
  if (ymax <= ymin) {
    double d = std::max(std::abs(ymin) * 0.05, 1e-3);
    ymin -= d, ymax += d;
  }
  double ypad = (ymax - ymin) * 0.05;
  ymin -= ypad, ymax += ypad;
  auto sx = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
  auto sy = [&](double y) { return top + (1 - (y - ymin) / (ymax - ymin)) * ph; };

  std::unique_ptr<cairo_surface_t, void (*)(cairo_surface_t*)> owned(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H), cairo_surface_destroy);
  cairo_surface_t* surface = owned.get();
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 12);
  cairo_text_extents_t ext;

  // Grid and tick labels.
  cairo_set_line_width(cr, 1);
  for (double t : nice_ticks(xmin, xmax)) {
    double x = sx(t);
    if (grid) {
      cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
      cairo_move_to(cr, x, top), cairo_line_to(cr, x, top + ph), cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    std::string s = tick_label(t);
    cairo_text_extents(cr, s.c_str(), &ext);
    cairo_move_to(cr, x - ext.width / 2 - ext.x_bearing, top + ph + 16);
    cairo_show_text(cr, s.c_str());
  }
  for (double t : nice_ticks(ymin, ymax)) {
    double y = sy(t);
    if (grid) {
      cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
      cairo_move_to(cr, left, y), cairo_line_to(cr, left + pw, y), cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    std::string s = tick_label(t);
    cairo_text_extents(cr, s.c_str(), &ext);
    cairo_move_to(cr, left - 6 - ext.width - ext.x_bearing, y - ext.height / 2 - ext.y_bearing);
    cairo_show_text(cr, s.c_str());
  }
  // Axes box and x label.
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, left, top, pw, ph);
  cairo_stroke(cr);
  cairo_text_extents(cr, x_label.c_str(), &ext);
  cairo_move_to(cr, left + pw / 2 - ext.width / 2 - ext.x_bearing, H - 12);
  cairo_show_text(cr, x_label.c_str());

  // Lines, clipped to the plot area.
  cairo_save(cr);
  cairo_rectangle(cr, left, top, pw, ph);
  cairo_clip(cr);
  size_t ci = 0;
  for (const auto& k : y_keys) {
    const Color c = kColors[ci++ % 10];
    auto it = data.find(k);
    if (it == data.end()) continue;
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 2);
    bool pen = false;
    for (const auto& [x, y] : it->second) {
      if (!std::isfinite(y)) {
        pen = false;
        continue;
      }
      if (pen) cairo_line_to(cr, sx(x), sy(y));
      else cairo_move_to(cr, sx(x), sy(y));
      pen = true;
    }
    cairo_stroke(cr);
    if (it->second.size() <= 50) {
      for (const auto& [x, y] : it->second) {
        if (!std::isfinite(y)) continue;
        cairo_arc(cr, sx(x), sy(y), 3, 0, 2 * M_PI);
        cairo_fill(cr);
      }
    }
  }
  cairo_restore(cr);

  // Legend (top right, inside the plot).
  double lw = 0;
  for (const auto& k : y_keys) {
    cairo_text_extents(cr, k.c_str(), &ext);
    lw = std::max(lw, ext.x_advance);
  }
  double lx = left + pw - lw - 44, ly = top + 8, lh = 18.0 * static_cast<double>(y_keys.size()) + 8;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, lx, ly, lw + 36, lh);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  ci = 0;
  for (const auto& k : y_keys) {
    const Color c = kColors[ci % 10];
    double y = ly + 13 + 18.0 * static_cast<double>(ci++);
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, lx + 6, y), cairo_line_to(cr, lx + 26, y), cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_move_to(cr, lx + 30, y + 4);
    cairo_show_text(cr, k.c_str());
  }

  cairo_destroy(cr);
  files::replace_file(path, "kiln: PlotReport", [&](const std::string& tmp) -> std::string {
    cairo_status_t st = cairo_surface_write_to_png(surface, tmp.c_str());
    return st == CAIRO_STATUS_SUCCESS ? std::string() : std::string(cairo_status_to_string(st));
  });
}

}  // namespace kiln::training::extensions
