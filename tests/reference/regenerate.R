# Writes the reference CSV files in this folder again from the R packages that define them.
# Run from the repository root: Rscript tests/reference/regenerate.R
# Versions used for the committed files: suddengains 0.7.2, clinicalsignificance 2.1.
suppressPackageStartupMessages({
  library(suddengains)
  library(clinicalsignificance)
})
out <- "tests/reference"
w <- function(x, name) write.csv(as.data.frame(x), file.path(out, name), row.names = FALSE, na = "")
vars <- paste0("bdi_s", 1:12)

w(sgdata, "sgdata.csv")
w(identify_sg(sgdata, sg_crit1_cutoff = 7, sg_crit2_pct = .25, sg_crit3 = TRUE, id_var_name = "id",
              sg_var_list = vars, crit123_details = TRUE),
  "sgdata_identify_sg_crit123_details.csv")
w(identify_sl(sgdata, sg_crit1_cutoff = -7, sg_crit2_pct = .25, sg_crit3 = TRUE, id_var_name = "id",
              sg_var_list = vars, crit123_details = TRUE),
  "sgdata_identify_sl_crit123_details.csv")
w(create_bysg(sgdata, sg_crit1_cutoff = 7, id_var_name = "id", tx_start_var_name = "bdi_s1",
              tx_end_var_name = "bdi_s12", sg_var_list = vars, sg_measure_name = "bdi"),
  "sgdata_bysg.csv")
w(create_bysl(sgdata, sg_crit1_cutoff = -7, id_var_name = "id", tx_start_var_name = "bdi_s1",
              tx_end_var_name = "bdi_s12", sg_var_list = vars, sg_measure_name = "bdi"),
  "sgdata_bysl.csv")
w(create_byperson(sgdata, sg_crit1_cutoff = 7, id_var_name = "id", tx_start_var_name = "bdi_s1",
                  tx_end_var_name = "bdi_s12", sg_var_list = vars, sg_measure_name = "bdi",
                  multiple_sg_select = "first"),
  "sgdata_byperson_first.csv")

w(jacobson_1989, "cs_jacobson_1989.csv")
w(cs_get_data(cs_combined(jacobson_1989, subject, time, das, pre = "pre", reliability = .84,
                          cutoff_type = "a", better_is = "higher")),
  "cs_jacobson1989_das_combined_JT_rel084_a_higher.csv")
w(claus_2020, "cs_claus_2020.csv")
w(cs_get_data(cs_combined(claus_2020, id, time, hamd, pre = 1, post = 4, reliability = .80,
                          m_functional = 8, sd_functional = 8, cutoff_type = "c")),
  "cs_claus2020_hamd_combined_JT_rel080_c_m8_sd8.csv")
w(cs_get_data(cs_combined(claus_2020, id, time, bdi, pre = 1, post = 4, reliability = .80,
                          m_functional = 7, sd_functional = 7, cutoff_type = "c")),
  "cs_claus2020_bdi_combined_JT_rel080_c_m7_sd7.csv")
