#!/usr/bin/env bash
# Train nnU-Net v2 with spineaug's augmentation on a small phantom dataset, then predict with nnUNetv2_predict.
# About 3 minutes on 2 CPU cores (one short epoch of 10 iterations: a smoke run, not a model).
#
#   examples/nnunet_train.sh [WORK_FOLDER]          # DEVICE=cuda examples/nnunet_train.sh on a GPU machine
#
# Needs the `nnunet` extra (`pip install -e '.[nnunet]'` in the spineaug checkout). Nothing is written outside
# WORK_FOLDER (default: a fresh temporary folder): the trainers are found through nnUNet_extTrainer, not by adding a
# file to the installed nnunetv2 (`spineaug nnunet-install` without --folder does that, once, for everyday use).
set -euo pipefail
WORK=${1:-$(mktemp -d -t spineaug-nnunet-XXXX)}
DEVICE=${DEVICE:-cpu}
TRAINER=${TRAINER:-nnUNetTrainerSpineAug_1epoch}          # preset xdomain; ...SpineAugNnunet / ...SpineAugPlus
export nnUNet_raw=$WORK/raw nnUNet_preprocessed=$WORK/preprocessed nnUNet_results=$WORK/results
export nnUNet_extTrainer=$WORK/trainers nnUNet_compile=f nnUNet_def_n_proc=1
export SPINEAUG_NNUNET_ITERATIONS=${ITERATIONS:-10}        # iterations per epoch: a smoke run, not a model

spineaug phantom --out "$nnUNet_raw" --domains ct --cases 4 --spacing 4 --shape 32,40,64 --dataset-id 951 --quiet
mkdir -p "$nnUNet_extTrainer"
spineaug nnunet-install --folder "$nnUNet_extTrainer"
nnUNetv2_plan_and_preprocess -d 951 -c 3d_fullres -np 1 -npfp 1
nnUNet_n_proc_DA=0 nnUNetv2_train 951 3d_fullres all -tr "$TRAINER" -device "$DEVICE"   # DA: in train_step
cat "$nnUNet_results"/Dataset951_*/"$TRAINER"__nnUNetPlans__3d_fullres/fold_all/spineaug_augmentation.json | head -8

mkdir -p "$WORK/in"
cp "$nnUNet_raw"/Dataset951_*/imagesTr/*_0000.nii.gz "$WORK/in/"
nnUNetv2_predict -i "$WORK/in" -o "$WORK/pred" -d 951 -c 3d_fullres -tr "$TRAINER" -f all -device "$DEVICE" \
  -npp 1 -nps 1
ls "$WORK/pred"                                            # CASE.nii.gz for every CASE_0000.nii.gz
echo "results in $WORK"
