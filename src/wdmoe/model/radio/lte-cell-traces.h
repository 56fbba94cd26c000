// pcap and NetAnim output of the LTE transport's cell: what its packets look like on the
// EPC's and the edge host's links and on every UE's radio bearer, and where its nodes are.
#ifndef WDMOE_LTE_CELL_TRACES_H
#define WDMOE_LTE_CELL_TRACES_H

#include "ns3/net-device-container.h"
#include "ns3/node-container.h"
#include "ns3/ptr.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ns3
{

class AnimationInterface;
class PcapFileWrapper;

/**
 * \ingroup wdmoe
 * Trace files of an LTE cell (LteTransport::EnableTraces makes one), written into a folder
 * while the simulation runs:
 *
 *  - pcap (the first kSnapBytes bytes of every packet): `<node>-<peer>.pcap` for every
 *    point-to-point device of the simulation (DLT_PPP; the EPC's S1-U, S1-MME, S5 and S11 links
 *    and the PGW's link to the edge host, e.g. `enb-sgw.pcap`, `pgw-edge.pcap`), and
 *    `ue<i>.pcap` for device i: the IP packets its LTE interface sends and receives, i.e. its
 *    data radio bearer (DLT_RAW; ns-3's LTE devices have no pcap of their own);
 *  - NetAnim: `netanim.xml`, the nodes with their positions (updated as they move), names and
 *    colours, and the point-to-point links; no packet animation (a run carries hundreds of
 *    thousands of datagrams).
 *
 * Nodes are named enb, ue<i>, pgw, sgw, edge and, for the other EPC nodes (the MME),
 * node<id>. NetAnim draws nodes without a mobility model at fixed places beside the cell (they
 * get a ConstantPositionMobilityModel: no random draw). Close (or the destructor) flushes and
 * closes the files; only one NetAnim file can be open in a process (ns-3's AnimationInterface).
 */
class LteCellTraces
{
  public:
    /// Bytes of every packet a pcap keeps: the PPP, IP, UDP and GTP-U headers, the inner IP
    /// and UDP headers and our 12-byte transfer header (78 bytes on S1-U) all fit.
    static constexpr uint32_t kSnapBytes = 128;

    /// The cell's nodes.
    struct Cell
    {
        Ptr<Node> bs;
        NodeContainer devices;
        NetDeviceContainer ueDevices; ///< device i's LTE device
        Ptr<Node> pgw;
        Ptr<Node> sgw;
        Ptr<Node> edge;
    };

    LteCellTraces(const Cell& cell, const std::string& dir, bool pcap, bool netanim);
    ~LteCellTraces();
    LteCellTraces(const LteCellTraces&) = delete;
    LteCellTraces& operator=(const LteCellTraces&) = delete;

    /// Flushes and closes every file (NetAnim's closing tag written). Idempotent.
    void Close();

    /// The files' names inside the folder.
    const std::vector<std::string>& Files() const { return m_files; }

  private:
    void EnablePcap(const Cell& cell);
    void EnableNetAnim(const Cell& cell);
    std::string NameOf(Ptr<Node> node) const;

    std::string m_dir;
    std::map<uint32_t, std::string> m_names; ///< by node id
    std::vector<Ptr<PcapFileWrapper>> m_pcaps;
    std::unique_ptr<AnimationInterface> m_anim;
    std::vector<std::string> m_files;
};

} // namespace ns3

#endif
